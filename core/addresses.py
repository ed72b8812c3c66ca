"""Client addresses kept only as their network."""
import ipaddress


def truncate_ip(address):
    """/24 of an IPv4 address, /48 of an IPv6 one (policy §1.2(1)
    names the IP; we keep only the network)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)

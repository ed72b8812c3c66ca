"""Charts for the console, drawn server-side as SVG by pygal (pinned in
requirements.txt): no script, no font and no stylesheet from anywhere but
the page itself."""
import pygal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family='system-ui, "DejaVu Sans", sans-serif',
    colors=("#1f4e79", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6", "#7f7f7f", "#2c7873"),
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=12,
)


def _options(**extra):
    # js=[]: pygal otherwise links its tooltip script from a CDN.
    options = dict(style=STYLE, js=[], disable_xml_declaration=True, explicit_size=False,
                   print_values=False, show_legend=True, legend_at_bottom=True)
    options.update(extra)
    return options


def _without_scripts(root):
    """pygal writes an inline ``window.pygal.config`` script into every
    chart even with ``js=[]``; the console's CSP (script-src 'self') blocks
    it, and the charts need no script: drop every script element."""
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _render(chart):
    chart.add_xml_filter(_without_scripts)
    return Markup(chart.render(is_unicode=True))


def bars(title, counts, *, label="count", horizontal=True, empty="nothing to show"):
    """A bar per key of ``counts`` ({name: number}), largest first, each
    labelled with its name and its number."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    if horizontal:
        ordered.reverse()  # pygal draws a horizontal chart's first bar at the bottom
    chart = (pygal.HorizontalBar if horizontal else pygal.Bar)(
        **_options(title=title, show_legend=False, height=max(160, 70 + 36 * len(counts)), width=640,
                   no_data_text=empty, print_values=True, truncate_label=-1, min_scale=1, max_scale=6,
                   value_formatter=lambda value: f"{value:g}"))
    chart.x_labels = [str(name) for name, _ in ordered]
    chart.add(label, [value for _, value in ordered])
    return _render(chart)


def stacked(title, categories, series, *, height=320, width=760):
    """Stacked bars: one bar per category, one layer per ``series`` item
    ({layer name: [value per category]})."""
    chart = pygal.StackedBar(**_options(title=title, height=height, width=width, x_label_rotation=0,
                                        no_data_text="no data"))
    chart.x_labels = [str(c) for c in categories]
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)


def daily(title, days, series, *, height=300, width=900):
    """Bars per day for each ``series`` item ({name: [value per day]}) over
    ``days`` (dates), a date label every week."""
    chart = pygal.Bar(**_options(title=title, height=height, width=width, x_label_rotation=0,
                                 show_minor_x_labels=False, truncate_label=-1, show_minor_y_labels=False,
                                 y_labels_major_count=5, min_scale=2, max_scale=6, no_data_text="no data",
                                 value_formatter=lambda value: f"{value:g}"))
    chart.x_labels = [d.isoformat() for d in days]
    chart.x_labels_major = [d.isoformat() for i, d in enumerate(days) if (len(days) - 1 - i) % 14 == 0]
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)

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


def _render(chart):
    return Markup(chart.render(is_unicode=True))


def bars(title, counts, *, label="count", horizontal=True, empty="nothing to show"):
    """A bar per key of ``counts`` ({name: number}), largest first."""
    chart = (pygal.HorizontalBar if horizontal else pygal.Bar)(
        **_options(title=title, show_legend=False, height=max(160, 60 + 34 * len(counts)), width=640,
                   no_data_text=empty, print_values=True))
    for name, value in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        chart.add(str(name), [{"value": value, "label": label}])
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
    """One line per ``series`` item ({name: [value per day]}) over ``days``
    (dates), a label every week."""
    chart = pygal.Line(**_options(title=title, height=height, width=width, show_dots=False, fill=False,
                                  x_label_rotation=30, show_minor_x_labels=False, truncate_label=-1,
                                  no_data_text="no data"))
    chart.x_labels = [d.isoformat() for d in days]
    chart.x_labels_major = [d.isoformat() for i, d in enumerate(days) if i % 7 == 0]
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)

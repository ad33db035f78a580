"""hakit.tools.topology — one YAML file describes a cluster; hakit turns it into a CIB.

`model` is the single typed description that drives loading, validation, rendering
and error messages; `load` reads YAML with locations; `render` builds the CIB XML;
`validate` runs every check and reports all problems at once.
"""

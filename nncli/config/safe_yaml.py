"""Reading YAML that users write (configs, sweep files, overrides) without trusting it.

A SafeLoader that also refuses what a config never needs: tags beyond plain values, files over 1 MB, values over
2048 characters, nesting over 50 levels and more than 10,000 values after expanding aliases (the billion-laughs
bomb), all checked on the composed node graph before any Python object is built; a key written twice in one
mapping is refused rather than silently overridden. Numbers follow YAML 1.2, not PyYAML's YAML 1.1: unquoted
1e-3 is a number (1.1 reads a string), 010 is ten (1.1 reads octal 8), 1:30 is a string (1.1 reads the
sexagesimal 90), 0o17 and 0x1F are octal and hex; underscores may group digits (1_000_000). Dates stay strings.
Every problem is a ConfigError that names the file (or override) and the line.
"""

import re
from pathlib import Path
from typing import Any

import yaml

from nncli.errors import ConfigError, show_value

MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 10_000
MAX_DEPTH = 50
MAX_SCALAR_CHARS = 2048  # also keeps every YAML integer (hex too) under Python's 4300-digit str() limit


class _Refused(Exception):
    """Valid YAML that is not an acceptable config (a tag, size or depth); `mark` locates it."""

    def __init__(self, message, mark):
        super().__init__(message)
        self.mark = mark


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str", "seq", "map", "merge")}
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_INT = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$")  # YAML 1.2 core, with digit grouping
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*\.[0-9_]*|(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+)
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X,
)


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float, keeps dates as strings and limits nesting while composing."""

    yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", *_NUMBER_TAGS)
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = self.composed = 0

    def compose_node(self, parent, index):
        """Compose one node, refusing deep or long documents early (PyYAML recurses and slows on long flow lists)."""
        self.depth += 1
        self.composed += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        if self.composed > MAX_VALUES:
            raise _Refused(f"more than {MAX_VALUES} values", self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        """Report an explicitly tagged value that does not fit its tag (!!int abc) at its line, not as a crash."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(f"{show_value(node.value)} is not a valid {tag}", node.start_mark) from None


def _construct_int(loader, node):
    """An integer by YAML 1.2's rules: decimal (a leading 0 changes nothing), 0o octal, 0x hex; no base 60."""
    text = loader.construct_scalar(node).replace("_", "")
    if not _INT.match(text):
        raise ValueError(text)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _construct_float(loader, node):
    """A float by YAML 1.2's rules (.inf, .nan, exponents with or without a dot); no base 60."""
    text = loader.construct_scalar(node).replace("_", "")
    if not _FLOAT.match(text) and not _INT.match(text):
        raise ValueError(text)
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(text.lower(), text))


ConfigLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
ConfigLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class ConfigDumper(yaml.SafeDumper):
    """SafeDumper that quotes every string ConfigLoader would read as a number (such as '1e5'); lists on one line."""

    def represent_list(self, data):
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


ConfigDumper.add_representer(list, ConfigDumper.represent_list)
for _cls in (ConfigLoader, ConfigDumper):  # the dumper quotes every string the loader would read as a number
    _cls.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _check_graph(root):
    """Refuse non-plain tags, long scalars, keys written twice, and graphs too deep or too large once aliases are
    expanded."""
    stack, seen = [(root, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _Refused(f"more than {MAX_VALUES} values once aliases are expanded", node.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", node.start_mark)
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(f"tag {tag} is not allowed; a config holds plain values only", node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_SCALAR_CHARS:
                raise _Refused(f"a value longer than {MAX_SCALAR_CHARS} characters", node.start_mark)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        else:
            _refuse_duplicate_keys(node)
            stack.extend((child, depth + 1) for pair in node.value for child in pair)


def _refuse_duplicate_keys(mapping):
    """A key written twice in one mapping (YAML would silently keep the last); merge keys (<<) may override."""
    lines = {}
    for key, _ in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if (key.tag, key.value) in lines:
                raise _Refused(
                    f"key {show_value(key.value)} appears twice in one mapping "
                    f"(first on line {lines[key.tag, key.value]})",
                    key.start_mark,
                )
            lines[key.tag, key.value] = key.start_mark.line + 1


def _at(mark):
    return f"line {mark.line + 1}, column {mark.column + 1}"


def parse_yaml(text: str, where: str) -> Any:
    """The plain Python value of one YAML document (None if empty); any problem is a ConfigError naming `where`."""
    try:
        loader = ConfigLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_graph(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _Refused as e:
        raise ConfigError(f"{where}: {e} ({_at(e.mark)})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at {_at(mark)}" if mark else ""
        context = f" ({e.context})" if e.context else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {e.problem}{context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: invalid YAML: {e}") from None


def read_yaml_file(path: str | Path, size_hint: str) -> Any:
    """The plain Python value of a YAML file (None if empty): at most MAX_FILE_BYTES of UTF-8 text (`size_hint` says
    what such a file normally holds); any problem is a ConfigError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB; {size_hint}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    return parse_yaml(text, str(path))

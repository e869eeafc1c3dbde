"""A folder of files whose names carry their cell: ``--pattern '{model}_{domain}[_S{seed}].csv'``."""

from __future__ import annotations

import re
from pathlib import Path

from emaudit.errors import InputError

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Compile a file-name pattern: ``{key}`` captures a cell value, ``[...]`` is optional.

    Values match as little as possible (``{model}_{domain}.csv`` splits ``a_b_c.csv`` into model
    ``a``, domain ``b_c``), so a separator that cannot occur in the first value keeps them apart.

    Raises:
        InputError: unbalanced brackets or braces, a key used twice, or no key at all.
    """
    parts: list[str] = []
    keys: list[str] = []
    depth = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "{":
            match = _FIELD.match(pattern, index)
            if match is None:
                raise InputError("--pattern", f"'{{' at {index + 1} does not open a {{key}}: {pattern!r}")
            key = match.group(1)
            if key in keys:
                raise InputError("--pattern", f"key '{key}' appears twice in {pattern!r}")
            keys.append(key)
            parts.append(f"(?P<{key}>.+?)")
            index = match.end()
            continue
        if char == "[":
            depth += 1
            parts.append("(?:")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise InputError("--pattern", f"']' without '[' in {pattern!r}")
            parts.append(")?")
        elif char == "}":
            raise InputError("--pattern", f"'}}' without '{{' in {pattern!r}")
        else:
            parts.append(re.escape(char))
        index += 1
    if depth:
        raise InputError("--pattern", f"'[' without ']' in {pattern!r}")
    if not keys:
        raise InputError("--pattern", f"no {{key}} in {pattern!r}, e.g. '{{model}}_{{domain}}.csv'")
    return re.compile("".join(parts) + r"\Z")


def files_in_folder(folder: Path, pattern: str) -> tuple[list[tuple[Path, dict[str, str]]], list[Path]]:
    """The folder's files that match ``pattern``, each with its cell values, and the ones that do not.

    Raises:
        InputError: a bad pattern, or no file of the folder matches it.
    """
    regex = pattern_regex(pattern)
    matched: list[tuple[Path, dict[str, str]]] = []
    skipped: list[Path] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        match = regex.match(path.name)
        if match is None:
            skipped.append(path)
        else:
            matched.append((path, {k: v for k, v in match.groupdict().items() if v is not None}))
    if not matched:
        example = ", ".join(p.name for p in skipped[:3]) or "it is empty"
        raise InputError(str(folder), f"no file matches --pattern {pattern!r} ({example})")
    return matched, skipped

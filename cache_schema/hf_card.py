"""The dataset card (README.md) of an exported cache: a YAML header `datasets` and the Hub read, and a body made
from the manifest, so that a team that has never heard of armada knows what the vectors are."""

from __future__ import annotations

import json
from typing import Any

from armada.cache_schema.hf_layout import HASH, ID, LABEL, VECTOR, ExportInfo
from armada.errors import ArmadaError


def render(info: ExportInfo, sizes: dict[str, tuple[int, int]], license: str | None, load_as: str) -> str:
    """The card; `load_as`: what `load_dataset` is given in its examples (the folder, or the Hub repository)."""
    import yaml

    m = info.manifest
    header = {"license": license or "unknown", "tags": ["armada", "teacher-features", m.teacher.kind],
              **info.header(sizes)}
    x = m.extraction
    lines = [
        f"# {m.dataset.task} — {m.teacher.name} teacher vectors",
        "",
        f"The latent vectors the **{m.teacher.name}** teacher ({m.teacher.kind}) gives every example of "
        f"**{m.dataset.task}**: {m.teacher.dim} values per example, stored as {x.dtype} exactly as the armada cache "
        "held them. Made for cross-modal distillation with [armada](https://github.com/LCS2-IIITD/ARMADA), "
        "readable with `datasets` alone.",
        "",
        "## Rows",
        "",
        "| split | examples | files | extracted with --limit |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {name} | {s.rows:,} | {len(info.files(name))} | {s.limit or 'all rows'} |"
          for name, s in m.dataset.splits.items()),
        "",
        "## Columns",
        "",
        f"- `{ID}`: the example's id in the task's data (armada's stable id per row).",
        f"- `{HASH}`: the sha256 of the text the teacher read (UTF-8), so a user can check the vector belongs to "
        "their copy of the row.",
        *_label_lines(info),
        f"- `{VECTOR}`: {m.teacher.dim} × {x.dtype}.",
        "",
        "## How it was made",
        "",
        f"- task: `{m.dataset.task}`, rows read from `{m.dataset.source}`",
        f"- teacher text template: {_template(x.teacher_template)}",
        f"- stored dtype: {x.dtype}; the cache's shards held {x.shard_rows} rows",
        f"- extracted by armada {m.tool_version} on {m.created}; cache config hash `{m.config_hash}`",
        f"- exported by: `{info.command or 'armada.cache_schema.hf_export.export_hf'}`",
        "",
        "### Teacher provenance",
        "",
        "Every setting that changes the teacher's output, as the manifest records it:",
        "",
        "| setting | value |",
        "| --- | --- |",
        *(f"| {key} | {_cell(value)} |" for key, value in m.teacher.provenance.items()),
        *(["", "### Other extraction settings", "", "| setting | value |", "| --- | --- |",
           *(f"| {key} | {_cell(value)} |" for key, value in x.settings.items())] if x.settings else []),
        "",
        "## Licence",
        "",
        *_licence_lines(info, license),
        "",
        "## Loading it",
        "",
        "```python",
        "from datasets import load_dataset",
        f"ds = load_dataset({json.dumps(load_as)}, split={json.dumps(next(iter(m.dataset.splits)))})   # streaming=True works too",
        f"vectors = ds.with_format(\"numpy\", dtype=\"{x.dtype}\")[:][\"{VECTOR}\"]   # (rows, {m.teacher.dim}), the stored values",
        "```",
        "",
        "`with_format(\"numpy\")` without a dtype widens float16 to float32 (exactly). With armada: "
        f"`armada distill --cache hf:{load_as} ...` trains from it, checking every id and teacher-text hash "
        f"against the task's data; `armada cache import --format hf hf:{load_as} cache.zarr` turns it back into "
        "the cache.",
        "",
        "armada reads `armada.json` (the cache's manifest, exactly) and refuses an export whose card or files do "
        "not match it.",
    ]
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(lines) + "\n"


def read_header(text: str, where: str) -> Any:
    """The card's YAML header (None when it has none)."""
    import yaml

    if not text.startswith("---\n"):
        return None
    end = text.find("\n---", 4)
    if end < 0:
        raise ArmadaError(f"{where}: the card's YAML header is not closed by a '---' line")
    try:
        return yaml.safe_load(text[4:end])
    except yaml.YAMLError as e:
        raise ArmadaError(f"{where}: the card's YAML header does not parse: {e}") from None


def _label_lines(info: ExportInfo) -> list[str]:
    label = info.label
    if label is None:
        return [f"- no `{LABEL}` column: exported without the task's labels (`--no-labels`) or the task has none; "
                "the labels are in the task's own data, matched by `example_id`."]
    if label.kind == "regression":
        meaning = "the regression score"
    elif label.names:
        meaning = f"the {'choice' if label.kind == 'multiple_choice' else 'class'} index: " + ", ".join(
            f"{i} = {name}" for i, name in enumerate(label.names))
    else:
        meaning = "the index of the correct option"
    return [f"- `{LABEL}`: {meaning}; null where the split has no labels. Taken from the task's data at export and "
            "checked against the split fingerprints the cache was extracted with."]


def _template(template: str) -> str:
    return f"`{template}`" if template else "the task's default (its text fields, lowercased and joined)"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _licence_lines(info: ExportInfo, license: str | None) -> list[str]:
    m = info.manifest
    declared = [f"- {where}.{key}: {_cell(value)}"
                for where, table in (("teacher", m.teacher.provenance), ("extraction", m.extraction.settings))
                for key, value in table.items() if "licen" in key.lower()]
    given = (f"The publisher declares this export's licence as `{license}`." if license else
             "No licence was given at export (`--license`), so the card says `unknown`.")
    return [given, "",
            *(["Licence fields the teacher and extraction declare:", "", *declared] if declared else
              [f"The manifest declares no licence for the teacher ({m.teacher.name}) or the data ({m.dataset.task}): "
               "the vectors derive from both, so check their terms before you redistribute or use them."])]

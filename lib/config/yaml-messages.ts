/**
 * YAML parser errors in the words of the person editing the file: what the parser saw, where, and the
 * likely fix (usually an indentation). Pure: works on the source text and the parser's error code/place.
 */

/** One syntax problem, at a 1-based line and column. */
export interface YamlProblem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** The parser's report: its code, its message and where it stopped (1-based). */
export interface YamlError {
  readonly code: string;
  readonly message: string;
  readonly line: number;
  readonly column: number;
}

const indentOf = (line: string) => line.length - line.trimStart().length;
const isContent = (line: string | undefined) => line !== undefined && line.trim() !== "" && !line.trimStart().startsWith("#");
/** A line without its comment and trailing space, for quoting in a message. */
const shown = (line: string) => line.replace(/\s+#.*$/, "").trim();

/** Plain messages for the parser's errors, one per place (the parser often reports a cause twice). */
export function explainYamlErrors(text: string, errors: readonly YamlError[]): YamlProblem[] {
  const lines = text.split(/\r?\n/);
  const out: YamlProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const p = explain(lines, e);
    const key = `${p.line}:${p.column}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function explain(lines: readonly string[], e: YamlError): YamlProblem {
  const plain = (message: string, line = e.line, column = e.column): YamlProblem => ({ line, column, message: `YAML syntax: ${message}` });
  const here = lines[e.line - 1] ?? "";
  switch (e.code) {
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY": {
      const rest = here.slice(e.column - 1).replace(/\s+#.*$/, "");
      if (/:(\s|$)/.test(rest)) {
        const key = here.slice(0, e.column - 1).trim();
        return plain(
          `two "key: value" pairs on one line ("${shown(here)}"): a value cannot start a mapping on the same line as its key; put "${rest.trim()}" on its own line, indented 2 spaces more than "${key}" (or quote the value if the ": " belongs in it)`,
        );
      }
      let next = e.line;
      while (next < lines.length && !isContent(lines[next])) next++;
      const deeper = lines[next];
      if (deeper !== undefined && indentOf(deeper) > indentOf(here)) {
        const want = indentOf(here);
        return plain(
          `line ${next + 1} ("${shown(deeper)}") is indented more than line ${e.line} ("${shown(here)}") above it, which already has a value, so it cannot start a key there; indent it by ${want} space${want === 1 ? "" : "s"} like "${here.trim().split(":")[0]}:" (keys of one mapping start in the same column), or, if it belongs under "${here.trim().split(":")[0]}", move "${here.slice(here.indexOf(":") + 1).trim()}" off that line`,
          next + 1,
          indentOf(deeper) + 1,
        );
      }
      return plain(`a key and its value must be on one line, and a value cannot start a mapping on its key's line (${e.message})`);
    }
    case "BAD_INDENT": {
      const flow = /^Flow (sequence|map)/.exec(e.message);
      if (flow) {
        const close = flow[1] === "sequence" ? "]" : "}";
        const open = unclosedOpener(lines, e.line, close === "]" ? "[" : "{");
        const what = close === "]" ? "list" : "mapping";
        if (open) {
          return plain(
            `this "${close === "]" ? "[" : "{"}" opens a ${what} that is never closed: end it with "${close}" (a ${what} in ${close === "]" ? "[ ]" : "{ }"} may span lines, but its continuation lines must be indented more than its key, and it must close before the next key)`,
            open.line,
            open.column,
          );
        }
        return plain(`a ${what} opened with "${close === "]" ? "[" : "{"}" is never closed: end it with "${close}"`);
      }
      if (/same column/.test(e.message)) {
        let prev = e.line - 2;
        while (prev >= 0 && !isContent(lines[prev])) prev--;
        const above = prev >= 0 ? indentOf(lines[prev]) : 0;
        return plain(
          `"${shown(here)}" starts in column ${indentOf(here) + 1}, but the keys of the mapping above it start in column ${above + 1}: keys of one mapping must start in the same column; indent it by ${above} space${above === 1 ? "" : "s"} (or fewer, like its parent's siblings, to end that mapping)`,
        );
      }
      return plain(`${e.message}: check the indentation of this line against the lines above it (spaces only; 2 per level)`);
    }
    case "TAB_AS_INDENT":
      return plain("a tab in the indentation: YAML indents with spaces only; replace the tab with spaces (2 per level)");
    case "DUPLICATE_KEY":
      return plain(`keys must be unique in a mapping: "${shown(here).split(":")[0]}" appears a second time here; keep one of them`);
    case "MISSING_CHAR":
      return plain(`${e.message.replace(/\.$/, "")}: a quoted value must close with the same quote on the same line`);
    default:
      return plain(e.message);
  }
}

/**
 * The place of the last `[` (or `{`) opened before `beforeLine` and not closed, outside quotes and
 * comments: where the user has to add the closing bracket.
 */
function unclosedOpener(lines: readonly string[], beforeLine: number, opener: "[" | "{"): { line: number; column: number } | undefined {
  const stack: Array<{ char: string; line: number; column: number }> = [];
  for (let l = 0; l < beforeLine - 1 && l < lines.length; l++) {
    const text = lines[l];
    let quote: string | undefined;
    for (let c = 0; c < text.length; c++) {
      const ch = text[c];
      if (quote) {
        if (ch === quote) quote = undefined;
        continue;
      }
      if (ch === "#" && (c === 0 || /\s/.test(text[c - 1]))) break;
      if ((ch === '"' || ch === "'") && /(^|[\s[{,:])$/.test(text.slice(0, c).trimEnd().slice(-1) || "")) quote = ch;
      else if (ch === "[" || ch === "{") stack.push({ char: ch, line: l + 1, column: c + 1 });
      else if (ch === "]" || ch === "}") stack.pop();
    }
  }
  const open = [...stack].reverse().find((s) => s.char === opener);
  return open && { line: open.line, column: open.column };
}

/**
 * Maps field paths to places in the YAML source, and turns paths + messages into ConfigProblems.
 */
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, Node, Pair } from "yaml";
import { ConfigProblem } from "./errors";

export type FieldPath = ReadonlyArray<string | number>;

/** Where a path points: the key of a map entry, or its value. */
export type Focus = "key" | "value";

/** Collects problems against one parsed YAML document. */
export class ProblemCollector {
  readonly problems: ConfigProblem[] = [];

  constructor(
    readonly file: string,
    private readonly doc?: Document,
    private readonly lines?: LineCounter,
  ) {}

  /**
   * Records a problem at `path`; the place is the deepest part of `place` (by default the path itself)
   * present in the file.
   */
  add(path: FieldPath, message: string, focus: Focus = "value", place: FieldPath = path): void {
    const offset = this.offsetOf(place, focus);
    const pos = offset !== undefined && this.lines ? this.lines.linePos(offset) : undefined;
    this.problems.push({
      file: this.file,
      line: pos?.line,
      column: pos?.col,
      path: path.join("."),
      message,
    });
  }

  /** Records a problem at a known position (YAML syntax errors). */
  addAt(line: number | undefined, column: number | undefined, message: string): void {
    this.problems.push({ file: this.file, line, column, path: "", message });
  }

  /** True when the file itself writes `path` (not a preset or a default). */
  has(path: FieldPath): boolean {
    if (!this.doc) return false;
    return this.doc.hasIn(path);
  }

  get empty(): boolean {
    return this.problems.length === 0;
  }

  private offsetOf(path: FieldPath, focus: Focus): number | undefined {
    if (!this.doc) return undefined;
    let node: unknown = this.doc.contents;
    let best: number | undefined = rangeStart(node);
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p: Pair) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return best;
        const keyStart = rangeStart(pair.key);
        const valueStart = rangeStart(pair.value);
        best = last && focus === "key" ? keyStart ?? best : valueStart ?? keyStart ?? best;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (item === undefined) return best;
        best = rangeStart(isPair(item) ? item.key : item) ?? best;
        node = item;
      } else {
        return best;
      }
    }
    return best;
  }
}

function rangeStart(node: unknown): number | undefined {
  return node && typeof node === "object" && "range" in node && Array.isArray((node as Node).range)
    ? (node as Node).range![0]
    : undefined;
}

/** The value at `path` in a plain object, or undefined. */
export function valueAt(root: unknown, path: FieldPath): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** A short, readable rendering of a received value for messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/**
 * The DICOM rule for Application Entity titles: the loader checks the file's titles against it (at their
 * lines), and the DICOM health check (`lib/haproxy/dicom-check.ts`) refuses to build a PDU that breaks it.
 * Pure: imports nothing.
 */
/** Longest AE title (PS3.5 Table 6.2-1); the A-ASSOCIATE-RQ pads shorter ones with spaces to this length. */
export const AE_TITLE_LENGTH = 16;
const AE_TITLE_RULE =
  "1-16 characters from the DICOM default character repertoire (printable ASCII), " +
  "no backslash or control characters, not only spaces";

/**
 * Checks an Application Entity title against the DICOM AE value representation (PS3.5 Table 6.2-1):
 * at most 16 characters of the default character repertoire, excluding backslash and control
 * characters, and not only spaces.
 *
 * @returns undefined when `title` is valid, else a short message of what is allowed.
 * @example aeTitleProblem("ORTHANC") // undefined
 * @example aeTitleProblem("A\\B") // "1-16 characters from ..."
 */
export function aeTitleProblem(title: string): string | undefined {
  if (title.length < 1 || title.length > AE_TITLE_LENGTH) return AE_TITLE_RULE;
  for (const char of title) {
    const code = char.codePointAt(0) ?? 0;
    // 0x20-0x7E is ISO-IR 6 without control characters (DEL is 0x7F); 0x5C is the backslash.
    if (code < 0x20 || code > 0x7e || code === 0x5c) return AE_TITLE_RULE;
  }
  if (title.trim() === "") return AE_TITLE_RULE;
  return undefined;
}

/** Arguments from the environment file in haproxy.cfg directives: quoted so HAProxy takes them literally. */

/**
 * Arguments from the environment file are single-quoted: HAProxy expands nothing there (no ${ENV}, so a
 * header value can never leak the stats password). The schema keeps single quotes and control characters out.
 */
export const regexArg = (value: string) => `'${value}'`;
/** A literal log-format argument (header values, replacements): `%` is doubled so `%[...]` is not evaluated. */
export const literalArg = (value: string) => `'${value.replace(/%/g, "%%")}'`;
/** `text` with the regular expression metacharacters escaped. */
export const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

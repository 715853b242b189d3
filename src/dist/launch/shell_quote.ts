// shell_quote.ts: a word quoted for a POSIX shell (bash, sh) so that the shell reads it back as
// exactly that one word: what the sbatch script needs to carry a command through `bash -c '...'`.

/** `word` as one shell word: bare when it holds only safe characters, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  // NOTE: nothing is special inside single quotes except the quote itself, which closes the quoted
  // part, is written escaped, and opens a new one: it's -> 'it'\''s'.
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

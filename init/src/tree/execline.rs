//! execline's lexer, as s6-rc-compile runs it on a oneshot's `up` and `down` at compile time
//! (`el_parse_from_buffer`, execline 2.9.9.x): the same state machine, table for table, so
//! `check` accepts exactly the scripts s6-rc-compile accepts and sees the same argv.
//!
//! The file is one command line: blanks and newlines separate words; `#` at the start of a
//! word comments to the end of the line (so a `#!` line is a comment); `"…"` quotes with
//! C-like escapes (`\n`, `\t`, `\0101` octal, `\101` decimal, `\0x41` hex; a value of 0 or
//! above 255 is a syntax error); a backslash outside quotes takes the next byte literally
//! (a backslash-newline between words is a blank); a lone `{` opens a block and disappears,
//! a lone `}` closes it and becomes the empty word; words inside blocks get one leading
//! space per level. A NUL byte ends the file, as end of file does.

/// Each byte's column in [`TABLE`], plus b'`' (execline's `class` string, verbatim).
const CLASS: &[u8; 256] = b"`aaaaaaaaadaaaaaaaaaaaaaaaaaaaaaafcbffffffffffffjhhhhhhhiifffffffmmmmmmfffffffffffffffffffffeffffggmmmgfffffffkfffkfkfkflffnfoffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// state × column → the next state (low 5 bits; 0x11 = done, 0x12 = syntax error) and the
/// actions (high bits, see [`lex`]). execline's `table`, verbatim.
const TABLE: [[u16; 16]; 17] = [
    [0x0011, 0x0000, 0x0001, 0x2008, 0x0000, 0x0005, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2402, 0x2403],
    [0x0011, 0x0001, 0x0001, 0x0001, 0x0000, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001, 0x0001],
    [0x0012, 0x1000, 0x0404, 0x0008, 0x1000, 0x0005, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404],
    [0x0911, 0x0900, 0x0404, 0x0008, 0x0900, 0x0005, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404],
    [0x0111, 0x0100, 0x0404, 0x0008, 0x0100, 0x0006, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404],
    [0x0011, 0x2404, 0x2404, 0x2404, 0x0000, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404, 0x2404],
    [0x0012, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404, 0x0404],
    [0x0012, 0x0408, 0x0408, 0x0408, 0x0008, 0x0408, 0x0408, 0x0208, 0x448c, 0x448c, 0x0089, 0x0208, 0x0408, 0x0408, 0x0408, 0x0408],
    [0x0012, 0x0408, 0x0408, 0x0004, 0x0408, 0x0007, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408, 0x0408],
    [0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x440a, 0x0012, 0x440a, 0x0012, 0x008e, 0x0012, 0x0012, 0x0012],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x8408, 0x040b, 0x8408, 0x040b, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x8408, 0x0410, 0x8408, 0x0410, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x8408, 0x040d, 0x040d, 0x040d, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x8408, 0x0410, 0x0410, 0x0410, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408],
    [0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x0012, 0x440f, 0x440f, 0x440f, 0x440f, 0x0012, 0x0012, 0x440f, 0x0012, 0x0012],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x0410, 0x0410, 0x0410, 0x0410, 0x8408, 0x8408, 0x0410, 0x8408, 0x8408],
    [0x8111, 0x8408, 0x8408, 0x8004, 0x8408, 0x8007, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408, 0x8408],
];

const DONE: u8 = 0x11;

/// One word of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as s6-rc-compile stores it in the database (block spaces included).
    pub raw: Vec<u8>,
    /// The block level it was read at: 0 for the top-level command line.
    pub level: u32,
    /// It is the `}` that closed a block (stored as the empty word of the level outside).
    pub close: bool,
}

impl Word {
    /// The word without the spaces its block level put in front.
    pub fn text(&self) -> &[u8] {
        if self.close {
            return b"";
        }
        let n = usize::try_from(self.level).unwrap_or(usize::MAX).min(self.raw.len());
        &self.raw[n..]
    }
}

/// Why s6-rc-compile refuses a script (`syntax error in …/up[: unmatched {|}]`, exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexError {
    /// A backslash at the end, an escape of 0 or above 255, a bad digit in a numeric escape,
    /// a quote or a `{` left open at the end of the file; at this line.
    Syntax { line: usize },
    /// A `{` without its `}`.
    UnmatchedOpen,
    /// A `}` without its `{`, at this line.
    UnmatchedClose { line: usize },
}

impl std::fmt::Display for LexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LexError::Syntax { line } => write!(
                f,
                "syntax error at line {line}: execline rejects it (an unterminated quote, a backslash or {{ at the very end, or a \\ escape whose value is 0, above 255 or has a bad digit)"
            ),
            LexError::UnmatchedOpen => write!(f, "syntax error: unmatched {{"),
            LexError::UnmatchedClose { line } => write!(f, "syntax error: unmatched }} at line {line}"),
        }
    }
}

/// Split `src` into words exactly as s6-rc-compile does.
pub fn lex(src: &[u8]) -> Result<Vec<Word>, LexError> {
    let mut words = Vec::new();
    // The word being read (execline's stralloc, from the start of this word on).
    let mut cur: Vec<u8> = Vec::new();
    let (mut level, mut close) = (0u32, false);
    let mut mark = 0usize;
    let mut blevel = 0u32;
    let mut state = 0u8;
    let mut base = 10u32;
    let mut i = 0usize;
    let mut line = 1usize;
    while state < DONE {
        let c = src.get(i).copied().unwrap_or(0);
        i += 1;
        let act = TABLE[usize::from(state)][usize::from(CLASS[usize::from(c)] - b'`')];
        state = (act & 0x1f) as u8;
        if act & 0x8000 != 0 {
            // The end of a numeric escape: its digits, since the mark, become one byte.
            let digits = cur.get(mark..).unwrap_or_default();
            let mut u: u64 = 0;
            for &d in digits {
                let v = match d {
                    b'0'..=b'9' => u32::from(d - b'0'),
                    b'a'..=b'f' => u32::from(d - b'a') + 10,
                    b'A'..=b'F' => u32::from(d - b'A') + 10,
                    _ => break,
                };
                if v >= base {
                    break;
                }
                u = u.saturating_mul(u64::from(base)).saturating_add(u64::from(v));
            }
            if u == 0 || u > 0xff {
                return Err(LexError::Syntax { line });
            }
            cur.truncate(mark);
            cur.push(u as u8);
        }
        if act & 0x4000 != 0 {
            mark = cur.len();
        }
        if act & 0x2000 != 0 {
            // A word starts: one space per block level. (Not always a fresh one: after a
            // `}` or a blank escaped at the start of a word, execline goes on with the word
            // it had not ended.)
            if cur.is_empty() {
                level = blevel;
            }
            cur.extend(std::iter::repeat_n(b' ', usize::try_from(blevel).unwrap_or(0)));
        }
        if act & 0x1000 != 0 {
            // A lone `{`: one level deeper, and the word is gone.
            blevel = blevel.saturating_add(1);
            cur.truncate(cur.len().saturating_sub(usize::try_from(blevel).unwrap_or(usize::MAX)));
        }
        if act & 0x0800 != 0 {
            // A lone `}`: one level up, stored as the empty word of that level.
            if blevel == 0 {
                return Err(LexError::UnmatchedClose { line });
            }
            blevel -= 1;
            close = true;
            cur.truncate(cur.len().saturating_sub(2));
        }
        if act & 0x0400 != 0 {
            cur.push(c);
        }
        if act & 0x0200 != 0 {
            let k = b"abtnvfr".iter().position(|&x| x == c).unwrap_or(7);
            cur.push(7 + k as u8);
        }
        if act & 0x0100 != 0 {
            words.push(Word { raw: std::mem::take(&mut cur), level, close });
            close = false;
        }
        if act & 0x0080 != 0 {
            base = match c {
                b'x' => 16,
                b'0' => 8,
                _ => 10,
            };
        }
        if c == b'\n' {
            line += 1;
        }
    }
    if state > DONE {
        return Err(LexError::Syntax { line });
    }
    if blevel > 0 {
        return Err(LexError::UnmatchedOpen);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(src: &str) -> Result<Vec<String>, LexError> {
        lex(src.as_bytes()).map(|w| w.into_iter().map(|w| String::from_utf8_lossy(&w.raw).into_owned()).collect())
    }

    #[test]
    fn words_blocks_quotes_comments() {
        // s6-spec.md §E.10
        assert_eq!(
            raw("if { mount -t proc proc /proc }\necho \"a # b\" # comment").unwrap(),
            ["if", " mount", " -t", " proc", " proc", " /proc", "", "echo", "a # b"]
        );
        assert_eq!(raw("#!/bin/execlineb -P\ntrue\n").unwrap(), ["true"]);
        assert_eq!(raw("a { b { c } d }").unwrap(), ["a", " b", "  c", " ", " d", ""]);
        assert_eq!(raw("a#b \"\" x").unwrap(), ["a#b", "", "x"]);
        assert_eq!(raw("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn escapes_as_s6_rc_compile_stores_them() {
        // verified with s6-rc-compile 0.6.1.1 and s6-rc-db script
        assert_eq!(raw("echo \"\\0101\" \"\\101\" \"\\x41\" \"\\q\" \\0").unwrap(), ["echo", "A", "e", "x41", "q", "0"]);
        assert_eq!(raw("a\\\nb").unwrap(), ["a\nb"]);
        assert_eq!(raw("foreground \\\n{ true } x").unwrap(), ["foreground", " true", "", "x"]);
        assert_eq!(raw("echo \\{ x").unwrap(), ["echo", "{", "x"]);
        assert_eq!(raw("\"\\n\\t\"").unwrap(), ["\n\t"]);
        assert_eq!(raw("a\0b c").unwrap(), ["a"], "a NUL ends the file");
        // a `}` or `{` that is not alone is part of the word, even across an escaped blank
        assert_eq!(raw("}\\x0a").unwrap(), ["}x0a"]);
        assert_eq!(raw("}\\\n{ a }").unwrap(), ["} a", ""]);
        for bad in ["echo \"\\0\"", "echo \"\\0x0\"", "echo \"\\09\"", "echo \"\\400\"", "a\\", "\"open", "{"] {
            assert!(matches!(lex(bad.as_bytes()), Err(LexError::Syntax { .. })), "{bad:?}");
        }
        assert_eq!(lex(b"if { true\n"), Err(LexError::UnmatchedOpen));
        assert_eq!(lex(b"true\n}\n"), Err(LexError::UnmatchedClose { line: 2 }));
    }

    #[test]
    fn levels_and_close_words() {
        let w = lex(b"foreground { if -n { a } b } if -n { c } d").unwrap();
        let top: Vec<&[u8]> = w.iter().filter(|w| w.level == 0 && !w.close).map(Word::text).collect();
        assert_eq!(top, [&b"foreground"[..], b"if", b"-n", b"d"]);
        let inner: Vec<(&[u8], u32, bool)> = w.iter().map(|w| (w.text(), w.level, w.close)).take(7).collect();
        assert_eq!(inner[1], (&b"if"[..], 1, false));
        assert_eq!(inner[4], (&b""[..], 2, true));
    }

    #[test]
    fn never_panics_on_any_short_input() {
        let alphabet = b"{}\"\\0x9a#\n \x00\xffn";
        let mut buf = Vec::new();
        for n in 0..(alphabet.len().pow(4)) {
            buf.clear();
            let mut k = n;
            for _ in 0..4 {
                buf.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let _ = lex(&buf);
        }
    }
}

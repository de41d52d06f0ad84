//! `regex.globs_match`: whether two "globs" (a small regex subset: characters, `.`, `[a-z]`
//! sets, each with an optional `*` or `+`, `\` escapes) match a common string. OPA answers with
//! the greedy algorithm of its glob-intersection library, not an exact intersection (`ab*` and
//! `a` do not match there), and sluice gives OPA's answers: the walk below follows the same
//! steps, checked against OPA by the differential corpus.
//!
//! Not here: any other regex syntax; `(`, `|`, `?` are plain characters here, as in OPA.

use std::collections::BTreeSet;

use regorus::Value;

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "regex.globs_match",
    arity: 2,
    run: globs_match,
}];

/// Longer globs are refused: the walk is quadratic, and a policy's globs are short.
const MAX_GLOB: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Class {
    Char(char),
    Any,
    Set(BTreeSet<char>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repeat {
    Once,
    Plus,
    Star,
}

#[derive(Clone, Debug)]
struct Token {
    class: Class,
    repeat: Repeat,
}

fn globs_match(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let a = tokenize(args, args.string(0)?)?;
    let b = tokenize(args, args.string(1)?)?;
    let mut walk = Walk {
        steps: 0,
        seen: std::collections::HashMap::new(),
    };
    match walk.normal(&a, &b) {
        Some(matched) => Ok(Value::from(matched)),
        None => Err(args.error("the globs are too complex to intersect")),
    }
}

fn invalid(args: &Args<'_>, input: &str, pos: usize, what: &str) -> BuiltinError {
    args.error(format!(
        "input:{input}, pos:{pos}, {what}: the input provided is invalid"
    ))
}

/// The next character, and whether a `\` escaped it.
fn next_char(
    args: &Args<'_>,
    input: &str,
    chars: &[char],
    i: usize,
) -> Result<Option<(usize, char, bool)>, BuiltinError> {
    match chars.get(i) {
        None => Ok(None),
        Some('\\') => match chars.get(i + 1) {
            Some(c) => Ok(Some((i + 2, *c, true))),
            None => Err(invalid(
                args,
                input,
                i,
                "input ends with a \\ (escape) character",
            )),
        },
        Some(c) => Ok(Some((i + 1, *c, false))),
    }
}

fn tokenize(args: &Args<'_>, input: &str) -> Result<Vec<Token>, BuiltinError> {
    if input.len() > MAX_GLOB {
        return Err(args.error("glob is longer than 4096 bytes"));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some((next, c, escaped)) = next_char(args, input, &chars, i)? {
        i = next;
        let class = match (c, escaped) {
            ('.', false) => Class::Any,
            (']', false) => {
                return Err(invalid(
                    args,
                    input,
                    i,
                    "set-close ']' with no preceding '['",
                ));
            }
            ('[', false) => {
                let (next, set) = set(args, input, &chars, i)?;
                i = next;
                Class::Set(set)
            }
            ('*' | '+', false) => {
                return Err(invalid(
                    args,
                    input,
                    i,
                    &format!("flag '{c}' must be preceded by a non-flag"),
                ));
            }
            (c, _) => Class::Char(c),
        };
        let repeat = match chars.get(i) {
            Some('*') => Repeat::Star,
            Some('+') => Repeat::Plus,
            _ => Repeat::Once,
        };
        if repeat != Repeat::Once {
            i += 1;
        }
        tokens.push(Token { class, repeat });
    }
    Ok(tokens)
}

/// A `[…]` set after its `[`: characters and `a-z` ranges, up to the `]`.
fn set(
    args: &Args<'_>,
    input: &str,
    chars: &[char],
    mut i: usize,
) -> Result<(usize, BTreeSet<char>), BuiltinError> {
    let mut out = BTreeSet::new();
    let mut prev: Option<char> = None;
    while let Some((next, c, escaped)) = next_char(args, input, chars, i)? {
        i = next;
        match (c, escaped) {
            (']', false) => return Ok((i, out)),
            ('-', false) => {
                let Some(from) = prev else {
                    return Err(invalid(
                        args,
                        input,
                        i,
                        "range character '-' must be preceded by a Unicode character",
                    ));
                };
                let Some((next, to, escaped)) = next_char(args, input, chars, i)? else {
                    return Err(invalid(
                        args,
                        input,
                        i,
                        "range character '-' must be followed by a Unicode character",
                    ));
                };
                i = next;
                if !escaped && (to == ']' || to == '-') {
                    return Err(invalid(
                        args,
                        input,
                        i,
                        "range character '-' cannot be followed by a special symbol",
                    ));
                }
                if to < from {
                    return Err(invalid(
                        args,
                        input,
                        i,
                        &format!("range is out of order: '{to}' comes before '{from}' in Unicode"),
                    ));
                }
                out.extend(from..=to);
                prev = None;
            }
            (c, _) => {
                out.insert(c);
                prev = Some(c);
            }
        }
    }
    Err(invalid(args, input, i, "found [ without matching ]"))
}

/// Whether two token classes share a character.
fn meets(a: &Class, b: &Class) -> bool {
    match (a, b) {
        (Class::Char(x), Class::Char(y)) => x == y,
        (Class::Any, _) | (_, Class::Any) => true,
        (Class::Char(c), Class::Set(s)) | (Class::Set(s), Class::Char(c)) => s.contains(c),
        (Class::Set(s), Class::Set(t)) => s.intersection(t).next().is_some(),
    }
}

/// Steps the walk may take: it can backtrack exponentially on adversarial globs
/// (`.*.*.*…`), which must not outlast eval_timeout.
const MAX_STEPS: usize = 1 << 20;

/// The walk, with its step budget (`None` when it ran out) and the answers of `normal` for
/// the pairs of suffixes already tried, which keeps the walk polynomial.
struct Walk {
    steps: usize,
    seen: std::collections::HashMap<(usize, usize, usize, usize), bool>,
}

impl Walk {
    fn step(&mut self) -> Option<()> {
        self.steps += 1;
        (self.steps <= MAX_STEPS).then_some(())
    }

    /// Token by token while neither repeats; a repeated token hands over to `special`. Both
    /// must end together.
    fn normal(&mut self, a: &[Token], b: &[Token]) -> Option<bool> {
        let key = (a.as_ptr() as usize, a.len(), b.as_ptr() as usize, b.len());
        if let Some(known) = self.seen.get(&key) {
            return Some(*known);
        }
        let answer = self.normal_once(a, b)?;
        self.seen.insert(key, answer);
        Some(answer)
    }

    fn normal_once(&mut self, a: &[Token], b: &[Token]) -> Option<bool> {
        self.step()?;
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].repeat == Repeat::Once && b[j].repeat == Repeat::Once {
                if !meets(&a[i].class, &b[j].class) {
                    return Some(false);
                }
            } else {
                return self.special(&a[i..], &b[j..]);
            }
            i += 1;
            j += 1;
        }
        Some(i == a.len() && j == b.len())
    }

    fn special(&mut self, a: &[Token], b: &[Token]) -> Option<bool> {
        let (repeated, other) = if a[0].repeat != Repeat::Once {
            (a, b)
        } else {
            (b, a)
        };
        match repeated[0].repeat {
            Repeat::Plus => match other.first() {
                Some(t) if meets(&repeated[0].class, &t.class) => self.star(repeated, &other[1..]),
                _ => Some(false),
            },
            _ => self.star(repeated, other),
        }
    }

    /// The starred token takes tokens of `other` while they fit it; wherever one fits the
    /// token after the star, the rest is tried to the end.
    fn star(&mut self, starred: &[Token], other: &[Token]) -> Option<bool> {
        let repeated = &starred[0].class;
        let after = starred.get(1);
        for (k, t) in other.iter().enumerate() {
            self.step()?;
            if let Some(after) = after {
                if meets(&t.class, &after.class) && self.normal(&starred[1..], &other[k..])? {
                    return Some(true);
                }
            }
            if !meets(&t.class, repeated) {
                return Some(false);
            }
        }
        Some(after.is_none())
    }
}

//! gqlparser's lexer: tokens with their line and column (in runes), comments as tokens (the
//! parser attaches them to nodes), and gqlparser's block-string indentation rule, which counts
//! the first line when finding the common indent.

use super::GqlError;
use super::ast::Pos;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Kind {
    #[default]
    Invalid,
    Eof,
    Bang,
    Dollar,
    Amp,
    ParenL,
    ParenR,
    Spread,
    Colon,
    Equals,
    At,
    BracketL,
    BracketR,
    BraceL,
    BraceR,
    Pipe,
    Name,
    Int,
    Float,
    String,
    BlockString,
    Comment,
}

impl Kind {
    pub fn text(self) -> &'static str {
        match self {
            Kind::Invalid => "<Invalid>",
            Kind::Eof => "<EOF>",
            Kind::Bang => "!",
            Kind::Dollar => "$",
            Kind::Amp => "&",
            Kind::ParenL => "(",
            Kind::ParenR => ")",
            Kind::Spread => "...",
            Kind::Colon => ":",
            Kind::Equals => "=",
            Kind::At => "@",
            Kind::BracketL => "[",
            Kind::BracketR => "]",
            Kind::BraceL => "{",
            Kind::BraceR => "}",
            Kind::Pipe => "|",
            Kind::Name => "Name",
            Kind::Int => "Int",
            Kind::Float => "Float",
            Kind::String => "String",
            Kind::BlockString => "BlockString",
            Kind::Comment => "Comment",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Token {
    pub kind: Kind,
    pub value: String,
    pub pos: Pos,
    /// The lexer's error for an `Invalid` token; the parser raises it when it takes the token.
    pub err: Option<GqlError>,
}

impl Token {
    /// gqlparser's `Token.String()`, used in "Unexpected …" messages.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Name | Kind::Int | Kind::Float | Kind::String | Kind::BlockString => {
                format!("{} {}", self.kind.text(), go_quote(&self.value))
            }
            k => k.text().to_string(),
        }
    }
}

/// Go's `strconv.Quote`, near enough for messages.
pub fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

pub struct Lexer<'a> {
    input: &'a str,
    start: usize,
    start_runes: usize,
    end: usize,
    end_runes: usize,
    line: usize,
    line_start_runes: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Self {
        Lexer {
            input,
            start: 0,
            start_runes: 0,
            end: 0,
            end_runes: 0,
            line: 1,
            line_start_runes: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.input.as_bytes()
    }

    fn token(&self, kind: Kind, value: String) -> Token {
        Token {
            kind,
            value,
            pos: Pos {
                line: self.line as isize,
                // Negative for a block string that ends on a later line, as in Go.
                col: self.start_runes as isize - self.line_start_runes as isize + 1,
            },
            err: None,
        }
    }

    fn slice_token(&self, kind: Kind) -> Token {
        let v = self
            .input
            .get(self.start..self.end)
            .unwrap_or("")
            .to_string();
        self.token(kind, v)
    }

    fn error(&self, message: String) -> Token {
        let pos = Pos {
            line: self.line as isize,
            col: self.end_runes as isize - self.line_start_runes as isize + 1,
        };
        Token {
            kind: Kind::Invalid,
            value: String::new(),
            pos,
            err: Some(GqlError {
                message,
                pos: Some(pos),
            }),
        }
    }

    /// The character at `end` and its width in bytes.
    fn peek_char(&self) -> Option<(char, usize)> {
        self.input
            .get(self.end..)
            .and_then(|s| s.chars().next())
            .map(|c| (c, c.len_utf8()))
    }

    pub fn read(&mut self) -> Token {
        self.ws();
        self.start = self.end;
        self.start_runes = self.end_runes;
        let b = self.bytes();
        if self.end >= b.len() {
            return self.slice_token(Kind::Eof);
        }
        let r = b[self.start];
        self.end += 1;
        self.end_runes += 1;
        let simple = match r {
            b'!' => Some(Kind::Bang),
            b'$' => Some(Kind::Dollar),
            b'&' => Some(Kind::Amp),
            b'(' => Some(Kind::ParenL),
            b')' => Some(Kind::ParenR),
            b':' => Some(Kind::Colon),
            b'=' => Some(Kind::Equals),
            b'@' => Some(Kind::At),
            b'[' => Some(Kind::BracketL),
            b']' => Some(Kind::BracketR),
            b'{' => Some(Kind::BraceL),
            b'}' => Some(Kind::BraceR),
            b'|' => Some(Kind::Pipe),
            _ => None,
        };
        if let Some(k) = simple {
            return self.token(k, String::new());
        }
        match r {
            b'.' if b.get(self.start..self.start + 3) == Some(b"...") => {
                self.end += 2;
                self.end_runes += 2;
                return self.token(Kind::Spread, String::new());
            }
            b'#' => return self.read_comment(),
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => return self.read_name(),
            b'-' | b'0'..=b'9' => return self.read_number(),
            b'"' => {
                if b.get(self.start..self.start + 3) == Some(b"\"\"\"") {
                    return self.read_block_string();
                }
                return self.read_string();
            }
            _ => {}
        }
        self.end -= 1;
        self.end_runes -= 1;
        if r < 0x20 && r != b'\t' && r != b'\n' && r != b'\r' {
            return self.error(format!(
                "Cannot contain the invalid character \"\\u{r:04}\""
            ));
        }
        if r == b'\'' {
            return self.error(
                "Unexpected single quote character ('), did you mean to use a double quote (\")?"
                    .to_string(),
            );
        }
        let c = self.peek_char().map(|(c, _)| c).unwrap_or('?');
        self.error(format!("Cannot parse the unexpected character \"{c}\"."))
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while self.end < b.len() {
            match b[self.end] {
                b'\t' | b' ' | b',' => {
                    self.end += 1;
                    self.end_runes += 1;
                }
                b'\n' => {
                    self.end += 1;
                    self.end_runes += 1;
                    self.line += 1;
                    self.line_start_runes = self.end_runes;
                }
                b'\r' => {
                    self.end += 1;
                    self.end_runes += 1;
                    self.line += 1;
                    self.line_start_runes = self.end_runes;
                    if self.end < b.len() && b[self.end] == b'\n' {
                        self.end += 1;
                        self.end_runes += 1;
                    }
                }
                0xef if b.get(self.end + 1..self.end + 3) == Some(&[0xbb, 0xbf]) => {
                    self.end += 3;
                    self.end_runes += 1;
                }
                _ => return,
            }
        }
    }

    fn read_comment(&mut self) -> Token {
        while let Some((c, w)) = self.peek_char() {
            if c as u32 > 0x1f || c == '\t' {
                self.end += w;
                self.end_runes += 1;
            } else {
                break;
            }
        }
        self.slice_token(Kind::Comment)
    }

    fn read_name(&mut self) -> Token {
        let b = self.bytes();
        while self.end < b.len() && (b[self.end].is_ascii_alphanumeric() || b[self.end] == b'_') {
            self.end += 1;
            self.end_runes += 1;
        }
        self.slice_token(Kind::Name)
    }

    fn accept(&mut self, set: &[u8]) -> bool {
        match self.bytes().get(self.end) {
            Some(c) if set.contains(c) => {
                self.end += 1;
                self.end_runes += 1;
                true
            }
            _ => false,
        }
    }

    fn digits(&mut self) -> usize {
        let b = self.bytes();
        let mut n = 0;
        while self.end < b.len() && b[self.end].is_ascii_digit() {
            self.end += 1;
            self.end_runes += 1;
            n += 1;
        }
        n
    }

    fn describe_next(&self) -> String {
        match self.peek_char() {
            Some((c, _)) => format!("\"{c}\""),
            None => "<EOF>".to_string(),
        }
    }

    fn read_number(&mut self) -> Token {
        let mut float = false;
        self.end -= 1;
        self.end_runes -= 1;
        self.accept(b"-");
        if self.accept(b"0") {
            let n = self.digits();
            if n != 0 {
                self.end -= n;
                self.end_runes -= n;
                return self.error(format!(
                    "Invalid number, unexpected digit after 0: {}.",
                    self.describe_next()
                ));
            }
        } else if self.digits() == 0 {
            return self.error(format!(
                "Invalid number, expected digit but got: {}.",
                self.describe_next()
            ));
        }
        if self.accept(b".") {
            float = true;
            if self.digits() == 0 {
                return self.error(format!(
                    "Invalid number, expected digit but got: {}.",
                    self.describe_next()
                ));
            }
        }
        if self.accept(b"eE") {
            float = true;
            self.accept(b"-+");
            if self.digits() == 0 {
                return self.error(format!(
                    "Invalid number, expected digit but got: {}.",
                    self.describe_next()
                ));
            }
        }
        self.slice_token(if float { Kind::Float } else { Kind::Int })
    }

    fn read_string(&mut self) -> Token {
        let b = self.bytes();
        let mut buf: Option<String> = None;
        self.start += 1;
        self.start_runes += 1;
        while self.end < b.len() {
            let r = b[self.end];
            if r == b'\n' || r == b'\r' {
                break;
            }
            if r < 0x20 && r != b'\t' {
                return self.error(format!("Invalid character within String: \"\\u{r:04}\"."));
            }
            match r {
                b'"' => {
                    let mut t = self.slice_token(Kind::String);
                    if let Some(s) = buf {
                        t.value = s;
                    }
                    self.end += 1;
                    self.end_runes += 1;
                    return t;
                }
                b'\\' => {
                    if self.end + 1 >= b.len() {
                        self.end += 1;
                        self.end_runes += 1;
                        return self.error("Invalid character escape sequence.".to_string());
                    }
                    let s = buf.get_or_insert_with(|| {
                        self.input
                            .get(self.start..self.end)
                            .unwrap_or("")
                            .to_string()
                    });
                    let esc = b[self.end + 1];
                    if esc == b'u' {
                        if self.end + 6 >= b.len() {
                            self.end += 1;
                            self.end_runes += 1;
                            let rest = self.input.get(self.end..).unwrap_or("");
                            return self
                                .error(format!("Invalid character escape sequence: \\{rest}."));
                        }
                        let hex = self.input.get(self.end + 2..self.end + 6).unwrap_or("");
                        let code = if hex.len() == 4 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                            u32::from_str_radix(hex, 16).ok()
                        } else {
                            None
                        };
                        let Some(code) = code else {
                            self.end += 1;
                            self.end_runes += 1;
                            let bad = self.input.get(self.end..self.end + 5).unwrap_or("");
                            return self
                                .error(format!("Invalid character escape sequence: \\{bad}."));
                        };
                        // Go's WriteRune writes U+FFFD for a lone surrogate.
                        s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        self.end += 6;
                        self.end_runes += 6;
                    } else {
                        let c = match esc {
                            b'"' => '"',
                            b'/' => '/',
                            b'\\' => '\\',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            _ => {
                                self.end += 1;
                                self.end_runes += 1;
                                return self.error(format!(
                                    "Invalid character escape sequence: \\{}.",
                                    esc as char
                                ));
                            }
                        };
                        s.push(c);
                        self.end += 2;
                        self.end_runes += 2;
                    }
                }
                _ => {
                    let (c, w) = self.peek_char().unwrap_or(('\u{fffd}', 1));
                    self.end += w;
                    self.end_runes += 1;
                    if let Some(s) = buf.as_mut() {
                        s.push(c);
                    }
                }
            }
        }
        self.error("Unterminated string.".to_string())
    }

    fn read_block_string(&mut self) -> Token {
        let b = self.bytes();
        let mut buf = String::new();
        self.start += 3;
        self.start_runes += 3;
        self.end += 2;
        self.end_runes += 2;
        while self.end < b.len() {
            let r = b[self.end];
            if r == b'"' && b.get(self.end..self.end + 3) == Some(b"\"\"\"") {
                let t = self.token(Kind::BlockString, block_string_value(&buf));
                self.end += 3;
                self.end_runes += 3;
                return t;
            }
            if r < 0x20 && r != b'\t' && r != b'\n' && r != b'\r' {
                return self.error(format!("Invalid character within String: \"\\u{r:04}\"."));
            }
            if r == b'\\' && b.get(self.end..self.end + 4) == Some(b"\\\"\"\"") {
                buf.push_str("\"\"\"");
                self.end += 4;
                self.end_runes += 4;
            } else if r == b'\r' {
                if b.get(self.end + 1) == Some(&b'\n') {
                    self.end += 1;
                    self.end_runes += 1;
                }
                buf.push('\n');
                self.end += 1;
                self.end_runes += 1;
                self.line += 1;
                self.line_start_runes = self.end_runes;
            } else {
                let (c, w) = self.peek_char().unwrap_or(('\u{fffd}', 1));
                self.end += w;
                self.end_runes += 1;
                buf.push(c);
                if r == b'\n' {
                    self.line += 1;
                    self.line_start_runes = self.end_runes;
                }
            }
        }
        self.error("Unterminated string.".to_string())
    }
}

/// Leading spaces and tabs, or `None` for a line of nothing else.
fn leading_whitespace(line: &str) -> Option<usize> {
    line.bytes().position(|c| c != b' ' && c != b'\t')
}

/// gqlparser's `blockStringValue`: the common indent is taken over every line (the first too)
/// and removed from all but the first; blank lines at either end go.
fn block_string_value(raw: &str) -> String {
    let mut lines: Vec<&str> = raw.split('\n').collect();
    let mut common: Option<usize> = None;
    for line in &lines {
        if let Some(indent) = leading_whitespace(line) {
            if common.is_none_or(|c| indent < c) {
                common = Some(indent);
                if indent == 0 {
                    break;
                }
            }
        }
    }
    if let Some(c) = common {
        for line in lines.iter_mut().skip(1) {
            *line = line.get(c..).unwrap_or("");
        }
    }
    let mut start = 0;
    let mut end = lines.len();
    while start < end && leading_whitespace(lines[start]).is_none() {
        start += 1;
    }
    while start < end && leading_whitespace(lines[end - 1]).is_none() {
        end -= 1;
    }
    lines[start..end].join("\n")
}

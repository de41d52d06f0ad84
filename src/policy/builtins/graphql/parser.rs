//! gqlparser's recursive-descent parser for query and schema documents, step for step (the
//! first error wins, comments attach where gqlparser attaches them). Nesting is bounded so a
//! deeply nested document is an error rather than a stack overflow.

use super::GqlError;
use super::ast::*;
use super::lexer::{Kind, Lexer, Token};

/// Deepest nesting of selection sets, values and types sluice parses; gqlparser has no bound.
pub const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    lexer: Lexer<'a>,
    err: Option<GqlError>,
    peeked: bool,
    peek_token: Token,
    prev: Token,
    comment: Comments,
    consuming: bool,
    depth: usize,
}

pub fn parse_query(input: &str) -> Result<QueryDocument, GqlError> {
    let mut p = Parser::new(input);
    let doc = p.query_document();
    match p.err {
        Some(e) => Err(e),
        None => Ok(doc),
    }
}

pub fn parse_schema(input: &str) -> Result<SchemaDocument, GqlError> {
    let mut p = Parser::new(input);
    let doc = p.schema_document();
    match p.err {
        Some(e) => Err(e),
        None => Ok(doc),
    }
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            lexer: Lexer::new(input),
            err: None,
            peeked: false,
            peek_token: Token::default(),
            prev: Token::default(),
            comment: None,
            consuming: false,
            depth: 0,
        }
    }

    fn consume_comment_group(&mut self) {
        if self.err.is_some() || self.consuming {
            return;
        }
        self.consuming = true;
        let mut list = Vec::new();
        loop {
            if self.err.is_some() {
                break;
            }
            let tok = self.peek();
            if tok.kind != Kind::Comment {
                break;
            }
            self.next();
            list.push(tok.value);
        }
        self.comment = Some(list);
        self.consuming = false;
    }

    fn peek(&mut self) -> Token {
        if self.err.is_some() {
            return self.prev.clone();
        }
        if !self.peeked {
            self.peek_token = self.lexer.read();
            self.peeked = true;
            if self.peek_token.kind == Kind::Comment {
                self.consume_comment_group();
            }
        }
        self.peek_token.clone()
    }

    fn peek_kind(&mut self) -> Kind {
        self.peek().kind
    }

    fn peek_pos(&mut self) -> Pos {
        if self.err.is_some() {
            return Pos::default();
        }
        self.peek().pos
    }

    fn error(&mut self, tok: &Token, message: String) {
        if self.err.is_some() {
            return;
        }
        self.err = Some(GqlError {
            message,
            pos: Some(tok.pos),
        });
    }

    fn next(&mut self) -> Token {
        if self.err.is_some() {
            return self.prev.clone();
        }
        if self.peeked {
            self.peeked = false;
            self.comment = None;
            self.prev = std::mem::take(&mut self.peek_token);
            self.err = self.prev.err.clone();
        } else {
            self.prev = self.lexer.read();
            self.err = self.prev.err.clone();
            if self.prev.kind == Kind::Comment {
                self.consume_comment_group();
            }
        }
        self.prev.clone()
    }

    fn expect_keyword(&mut self, value: &str) -> (Token, Comments) {
        let tok = self.peek();
        let comment = self.comment.clone();
        if tok.kind == Kind::Name && tok.value == value {
            return (self.next(), comment);
        }
        let message = format!(
            "Expected {}, found {}",
            super::lexer::go_quote(value),
            tok.describe()
        );
        self.error(&tok, message);
        (tok, comment)
    }

    fn expect(&mut self, kind: Kind) -> (Token, Comments) {
        let tok = self.peek();
        let comment = self.comment.clone();
        if tok.kind == kind {
            return (self.next(), comment);
        }
        let message = format!("Expected {}, found {}", kind.text(), tok.kind.text());
        self.error(&tok, message);
        (tok, comment)
    }

    fn skip(&mut self, kind: Kind) -> bool {
        if self.err.is_some() {
            return false;
        }
        if self.peek_kind() != kind {
            return false;
        }
        self.next();
        true
    }

    fn unexpected_error(&mut self) {
        let tok = self.peek();
        self.unexpected_token(&tok);
    }

    fn unexpected_token(&mut self, tok: &Token) {
        self.error(tok, format!("Unexpected {}", tok.describe()));
    }

    fn many(&mut self, start: Kind, end: Kind, mut cb: impl FnMut(&mut Self)) {
        if !self.skip(start) {
            return;
        }
        while self.peek_kind() != end && self.err.is_none() {
            cb(self);
        }
        self.next();
    }

    fn some(&mut self, start: Kind, end: Kind, mut cb: impl FnMut(&mut Self)) -> Comments {
        if !self.skip(start) {
            return None;
        }
        let mut called = false;
        while self.peek_kind() != end && self.err.is_none() {
            called = true;
            cb(self);
        }
        if !called {
            let tok = self.peek();
            let message = format!(
                "expected at least one definition, found {}",
                tok.kind.text()
            );
            self.error(&tok, message);
            return None;
        }
        let comment = self.comment.clone();
        self.next();
        comment
    }

    /// Enters one level of nesting; false (with the error set) past `MAX_DEPTH`.
    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let tok = self.peek();
            self.error(
                &tok,
                format!("document nested deeper than {MAX_DEPTH} levels (a sluice limit)"),
            );
            return false;
        }
        true
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn name(&mut self) -> String {
        self.expect(Kind::Name).0.value
    }

    // ---- query documents ----

    fn query_document(&mut self) -> QueryDocument {
        let mut doc = QueryDocument::default();
        while self.peek_kind() != Kind::Eof {
            if self.err.is_some() {
                return doc;
            }
            let tok = self.peek();
            match tok.kind {
                Kind::Name => match tok.value.as_str() {
                    "query" | "mutation" | "subscription" => {
                        let op = self.operation_definition();
                        doc.operations.push(op);
                    }
                    "fragment" => {
                        let f = self.fragment_definition();
                        doc.fragments.push(f);
                    }
                    _ => self.unexpected_error(),
                },
                Kind::BraceL => {
                    let op = self.operation_definition();
                    doc.operations.push(op);
                }
                _ => self.unexpected_error(),
            }
        }
        doc
    }

    fn operation_definition(&mut self) -> OperationDefinition {
        if self.peek_kind() == Kind::BraceL {
            let pos = self.peek_pos();
            let selections = self.required_selection_set();
            // Go reads p.comment after the selection set is parsed: in effect never set.
            return OperationDefinition {
                operation: "query".to_string(),
                selections,
                comment: self.comment.clone(),
                pos,
                ..Default::default()
            };
        }
        let mut od = OperationDefinition {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        od.operation = self.operation_type();
        if self.peek_kind() == Kind::Name {
            od.name = self.next().value;
        }
        od.variables = self.variable_definitions();
        od.directives = self.directives(false);
        od.selections = self.required_selection_set();
        od
    }

    fn operation_type(&mut self) -> String {
        let tok = self.next();
        match tok.value.as_str() {
            "query" | "mutation" | "subscription" => tok.value,
            _ => {
                self.unexpected_token(&tok);
                String::new()
            }
        }
    }

    fn variable_definitions(&mut self) -> Vec<VariableDefinition> {
        let mut defs = Vec::new();
        self.some(Kind::ParenL, Kind::ParenR, |p| {
            let d = p.variable_definition();
            defs.push(d);
        });
        defs
    }

    fn variable_definition(&mut self) -> VariableDefinition {
        let mut def = VariableDefinition {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        def.variable = self.variable();
        self.expect(Kind::Colon);
        def.ty = self.type_reference();
        if self.skip(Kind::Equals) {
            def.default = self.value_literal(true);
        }
        def.directives = self.directives(false);
        def
    }

    fn variable(&mut self) -> String {
        self.expect(Kind::Dollar);
        self.name()
    }

    fn required_selection_set(&mut self) -> Vec<Selection> {
        if self.peek_kind() != Kind::BraceL {
            let tok = self.peek();
            let message = format!(
                "Expected {}, found {}",
                Kind::BraceL.text(),
                tok.kind.text()
            );
            self.error(&tok, message);
            return Vec::new();
        }
        self.selection_set()
    }

    fn selection_set(&mut self) -> Vec<Selection> {
        let mut out = Vec::new();
        if !self.enter() {
            return out;
        }
        self.some(Kind::BraceL, Kind::BraceR, |p| {
            let s = p.selection();
            out.push(s);
        });
        self.leave();
        out
    }

    fn selection(&mut self) -> Selection {
        if self.peek_kind() == Kind::Spread {
            return self.fragment();
        }
        Selection::Field(self.field())
    }

    fn field(&mut self) -> Field {
        let mut f = Field {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        f.alias = self.name();
        f.name = if self.skip(Kind::Colon) {
            self.name()
        } else {
            f.alias.clone()
        };
        f.arguments = self.arguments(false);
        f.directives = self.directives(false);
        if self.peek_kind() == Kind::BraceL {
            f.selections = self.selection_set();
        }
        f
    }

    fn arguments(&mut self, is_const: bool) -> Vec<Argument> {
        let mut out = Vec::new();
        self.some(Kind::ParenL, Kind::ParenR, |p| {
            let a = p.argument(is_const);
            out.push(a);
        });
        out
    }

    fn argument(&mut self, is_const: bool) -> Argument {
        let mut a = Argument {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        a.name = self.name();
        self.expect(Kind::Colon);
        a.value = self.value_literal(is_const).unwrap_or_default();
        a
    }

    fn fragment(&mut self) -> Selection {
        let (_, comment) = self.expect(Kind::Spread);
        let peek = self.peek();
        if peek.kind == Kind::Name && peek.value != "on" {
            let pos = self.peek_pos();
            let name = self.fragment_name();
            let directives = self.directives(false);
            return Selection::Spread(FragmentSpread {
                name,
                directives,
                comment,
                pos,
            });
        }
        let mut def = InlineFragment {
            pos: self.peek_pos(),
            comment,
            ..Default::default()
        };
        if self.peek().value == "on" {
            self.next();
            def.type_condition = self.name();
        }
        def.directives = self.directives(false);
        def.selections = self.required_selection_set();
        Selection::Inline(def)
    }

    fn fragment_definition(&mut self) -> FragmentDefinition {
        let mut def = FragmentDefinition {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        self.expect_keyword("fragment");
        def.name = self.fragment_name();
        def.variables = self.variable_definitions();
        self.expect_keyword("on");
        def.type_condition = self.name();
        def.directives = self.directives(false);
        def.selections = self.required_selection_set();
        def
    }

    fn fragment_name(&mut self) -> String {
        if self.peek().value == "on" {
            self.unexpected_error();
            return String::new();
        }
        self.name()
    }

    fn value_literal(&mut self, is_const: bool) -> Option<Value> {
        if !self.enter() {
            return None;
        }
        let v = self.value_inner(is_const);
        self.leave();
        v
    }

    fn value_inner(&mut self, is_const: bool) -> Option<Value> {
        let tok = self.peek();
        let kind = match tok.kind {
            Kind::BracketL => {
                let pos = self.peek_pos();
                let comment = self.comment.clone();
                let mut children = Vec::new();
                self.many(Kind::BracketL, Kind::BracketR, |p| {
                    let v = p.value_literal(is_const).unwrap_or_default();
                    children.push(ChildValue {
                        value: v,
                        ..Default::default()
                    });
                });
                return Some(Value {
                    children,
                    kind: kind::LIST,
                    pos,
                    comment,
                    ..Default::default()
                });
            }
            Kind::BraceL => {
                let pos = self.peek_pos();
                let comment = self.comment.clone();
                let mut children = Vec::new();
                self.many(Kind::BraceL, Kind::BraceR, |p| {
                    let mut f = ChildValue {
                        pos: p.peek_pos(),
                        comment: p.comment.clone(),
                        ..Default::default()
                    };
                    f.name = p.name();
                    p.expect(Kind::Colon);
                    f.value = p.value_literal(is_const).unwrap_or_default();
                    children.push(f);
                });
                return Some(Value {
                    children,
                    kind: kind::OBJECT,
                    pos,
                    comment,
                    ..Default::default()
                });
            }
            Kind::Dollar => {
                if is_const {
                    self.unexpected_error();
                    return None;
                }
                let raw = self.variable();
                // Go reads p.comment after the call has consumed the tokens.
                return Some(Value {
                    raw,
                    kind: kind::VARIABLE,
                    pos: tok.pos,
                    comment: self.comment.clone(),
                    ..Default::default()
                });
            }
            Kind::Int => kind::INT,
            Kind::Float => kind::FLOAT,
            Kind::String => kind::STRING,
            Kind::BlockString => kind::BLOCK,
            Kind::Name => match tok.value.as_str() {
                "true" | "false" => kind::BOOLEAN,
                "null" => kind::NULL,
                _ => kind::ENUM,
            },
            _ => {
                self.unexpected_error();
                return None;
            }
        };
        self.next();
        Some(Value {
            raw: tok.value,
            kind,
            pos: tok.pos,
            comment: self.comment.clone(),
            ..Default::default()
        })
    }

    fn directives(&mut self, is_const: bool) -> Vec<Directive> {
        let mut out = Vec::new();
        while self.peek_kind() == Kind::At {
            if self.err.is_some() {
                break;
            }
            self.expect(Kind::At);
            let pos = self.peek_pos();
            let name = self.name();
            let arguments = self.arguments(is_const);
            out.push(Directive {
                name,
                arguments,
                pos,
            });
        }
        out
    }

    fn type_reference(&mut self) -> Type {
        if !self.enter() {
            return Type::default();
        }
        let mut t = Type::default();
        if self.skip(Kind::BracketL) {
            t.pos = self.peek_pos();
            t.elem = Some(Box::new(self.type_reference()));
            self.expect(Kind::BracketR);
        } else {
            t.pos = self.peek_pos();
            t.named = self.name();
        }
        if self.skip(Kind::Bang) {
            t.non_null = true;
        }
        self.leave();
        t
    }

    // ---- schema documents ----

    fn schema_document(&mut self) -> SchemaDocument {
        let mut doc = SchemaDocument::default();
        while self.peek_kind() != Kind::Eof {
            if self.err.is_some() {
                return doc;
            }
            let mut description = (String::new(), None);
            if matches!(self.peek_kind(), Kind::BlockString | Kind::String) {
                description = self.description();
            }
            if self.peek_kind() != Kind::Name {
                self.unexpected_error();
                break;
            }
            let value = self.peek().value;
            match value.as_str() {
                "scalar" | "type" | "interface" | "union" | "enum" | "input" => {
                    let d = self.type_system_definition(description);
                    doc.definitions.push(d);
                }
                "schema" => {
                    let d = self.schema_definition(description);
                    doc.schema.push(d);
                }
                "directive" => {
                    let d = self.directive_definition(description);
                    doc.directives.push(d);
                }
                "extend" => {
                    if !description.0.is_empty() {
                        let prev = self.prev.clone();
                        self.unexpected_token(&prev);
                    }
                    self.type_system_extension(&mut doc);
                }
                _ => {
                    self.unexpected_error();
                    return doc;
                }
            }
        }
        doc.comment = self.comment.clone();
        doc
    }

    fn description(&mut self) -> (String, Comments) {
        if !matches!(self.peek_kind(), Kind::BlockString | Kind::String) {
            return (String::new(), None);
        }
        let comment = self.comment.clone();
        (self.next().value, comment)
    }

    fn type_system_definition(&mut self, description: (String, Comments)) -> Definition {
        let tok = self.peek();
        let kind = match tok.value.as_str() {
            "scalar" => "SCALAR",
            "type" => "OBJECT",
            "interface" => "INTERFACE",
            "union" => "UNION",
            "enum" => "ENUM",
            _ => "INPUT_OBJECT",
        };
        let (_, comment) = self.expect_keyword(&tok.value);
        let mut def = Definition {
            pos: self.peek_pos(),
            kind: kind.to_string(),
            before_comment: description.1,
            description: description.0,
            after_comment: comment,
            ..Default::default()
        };
        def.name = self.name();
        match kind {
            "SCALAR" => def.directives = self.directives(true),
            "OBJECT" | "INTERFACE" => {
                def.interfaces = self.implements_interfaces();
                def.directives = self.directives(true);
                (def.fields, def.end_comment) = self.fields_definition();
            }
            "UNION" => {
                def.directives = self.directives(true);
                def.types = self.union_member_types();
            }
            "ENUM" => {
                def.directives = self.directives(true);
                (def.enum_values, def.end_comment) = self.enum_values_definition();
            }
            _ => {
                def.directives = self.directives(true);
                (def.fields, def.end_comment) = self.input_fields_definition();
            }
        }
        def
    }

    fn schema_definition(&mut self, description: (String, Comments)) -> SchemaDefinition {
        let (_, comment) = self.expect_keyword("schema");
        let mut def = SchemaDefinition {
            pos: self.peek_pos(),
            before_comment: description.1,
            description: description.0,
            after_comment: comment,
            ..Default::default()
        };
        def.directives = self.directives(true);
        let mut ops = Vec::new();
        def.end_comment = self.some(Kind::BraceL, Kind::BraceR, |p| {
            let o = p.operation_type_definition();
            ops.push(o);
        });
        def.operation_types = ops;
        def
    }

    fn operation_type_definition(&mut self) -> OperationTypeDefinition {
        let mut op = OperationTypeDefinition {
            pos: self.peek_pos(),
            comment: self.comment.clone(),
            ..Default::default()
        };
        op.operation = self.operation_type();
        self.expect(Kind::Colon);
        op.ty = self.name();
        op
    }

    fn implements_interfaces(&mut self) -> Vec<String> {
        let mut types = Vec::new();
        if self.peek().value == "implements" {
            self.next();
            self.skip(Kind::Amp);
            types.push(self.name());
            while self.skip(Kind::Amp) && self.err.is_none() {
                types.push(self.name());
            }
        }
        types
    }

    fn fields_definition(&mut self) -> (Vec<FieldDefinition>, Comments) {
        let mut defs = Vec::new();
        let c = self.some(Kind::BraceL, Kind::BraceR, |p| {
            let d = p.field_definition(false);
            defs.push(d);
        });
        (defs, c)
    }

    fn input_fields_definition(&mut self) -> (Vec<FieldDefinition>, Comments) {
        let mut defs = Vec::new();
        let c = self.some(Kind::BraceL, Kind::BraceR, |p| {
            let d = p.field_definition(true);
            defs.push(d);
        });
        (defs, c)
    }

    /// A field definition, or with `input` an input value definition (a default, no
    /// arguments).
    fn field_definition(&mut self, input: bool) -> FieldDefinition {
        let mut def = FieldDefinition {
            pos: self.peek_pos(),
            ..Default::default()
        };
        let desc = self.description();
        if !desc.0.is_empty() {
            def.before_comment = desc.1;
            def.description = desc.0;
        }
        self.peek();
        def.after_comment = self.comment.clone();
        def.name = self.name();
        if !input {
            def.arguments = self.argument_defs();
        }
        self.expect(Kind::Colon);
        def.ty = self.type_reference();
        if input && self.skip(Kind::Equals) {
            def.default = self.value_literal(true);
        }
        def.directives = self.directives(true);
        def
    }

    fn argument_defs(&mut self) -> Vec<ArgumentDefinition> {
        let mut args = Vec::new();
        self.some(Kind::ParenL, Kind::ParenR, |p| {
            let mut def = ArgumentDefinition {
                pos: p.peek_pos(),
                ..Default::default()
            };
            let desc = p.description();
            if !desc.0.is_empty() {
                def.before_comment = desc.1;
                def.description = desc.0;
            }
            p.peek();
            def.after_comment = p.comment.clone();
            def.name = p.name();
            p.expect(Kind::Colon);
            def.ty = p.type_reference();
            if p.skip(Kind::Equals) {
                def.default = p.value_literal(true);
            }
            def.directives = p.directives(true);
            args.push(def);
        });
        args
    }

    fn union_member_types(&mut self) -> Vec<String> {
        let mut types = Vec::new();
        if self.skip(Kind::Equals) {
            self.skip(Kind::Pipe);
            types.push(self.name());
            while self.skip(Kind::Pipe) && self.err.is_none() {
                types.push(self.name());
            }
        }
        types
    }

    fn enum_values_definition(&mut self) -> (Vec<EnumValueDefinition>, Comments) {
        let mut values = Vec::new();
        let c = self.some(Kind::BraceL, Kind::BraceR, |p| {
            let mut def = EnumValueDefinition {
                pos: p.peek_pos(),
                ..Default::default()
            };
            let desc = p.description();
            if !desc.0.is_empty() {
                def.before_comment = desc.1;
                def.description = desc.0;
            }
            p.peek();
            def.after_comment = p.comment.clone();
            def.name = p.name();
            def.directives = p.directives(true);
            values.push(def);
        });
        (values, c)
    }

    fn type_system_extension(&mut self, doc: &mut SchemaDocument) {
        let (_, comment) = self.expect_keyword("extend");
        let which = self.peek().value;
        if which == "schema" {
            self.expect_keyword("schema");
            let mut def = SchemaDefinition {
                pos: self.peek_pos(),
                after_comment: comment,
                ..Default::default()
            };
            def.directives = self.directives(true);
            let mut ops = Vec::new();
            def.end_comment = self.some(Kind::BraceL, Kind::BraceR, |p| {
                let o = p.operation_type_definition();
                ops.push(o);
            });
            def.operation_types = ops;
            if def.directives.is_empty() && def.operation_types.is_empty() {
                self.unexpected_error();
            }
            doc.schema_extension.push(def);
            return;
        }
        let kind = match which.as_str() {
            "scalar" => "SCALAR",
            "type" => "OBJECT",
            "interface" => "INTERFACE",
            "union" => "UNION",
            "enum" => "ENUM",
            "input" => "INPUT_OBJECT",
            _ => {
                self.unexpected_error();
                return;
            }
        };
        self.expect_keyword(&which);
        let mut def = Definition {
            pos: self.peek_pos(),
            after_comment: comment,
            kind: kind.to_string(),
            ..Default::default()
        };
        def.name = self.name();
        let empty = match kind {
            "SCALAR" => {
                def.directives = self.directives(true);
                def.directives.is_empty()
            }
            "OBJECT" => {
                def.interfaces = self.implements_interfaces();
                def.directives = self.directives(true);
                (def.fields, def.end_comment) = self.fields_definition();
                def.interfaces.is_empty() && def.directives.is_empty() && def.fields.is_empty()
            }
            "INTERFACE" => {
                def.directives = self.directives(true);
                (def.fields, def.end_comment) = self.fields_definition();
                def.directives.is_empty() && def.fields.is_empty()
            }
            "UNION" => {
                def.directives = self.directives(true);
                def.types = self.union_member_types();
                def.directives.is_empty() && def.types.is_empty()
            }
            "ENUM" => {
                def.directives = self.directives(true);
                (def.enum_values, def.end_comment) = self.enum_values_definition();
                def.directives.is_empty() && def.enum_values.is_empty()
            }
            _ => {
                def.directives = self.directives(false);
                (def.fields, def.end_comment) = self.input_fields_definition();
                def.directives.is_empty() && def.fields.is_empty()
            }
        };
        if empty {
            self.unexpected_error();
        }
        doc.extensions.push(def);
    }

    fn directive_definition(&mut self, description: (String, Comments)) -> DirectiveDefinition {
        let (_, comment) = self.expect_keyword("directive");
        self.expect(Kind::At);
        let mut def = DirectiveDefinition {
            pos: self.peek_pos(),
            before_comment: description.1,
            description: description.0,
            after_comment: comment,
            ..Default::default()
        };
        def.name = self.name();
        def.arguments = self.argument_defs();
        let peek = self.peek();
        if peek.kind == Kind::Name && peek.value == "repeatable" {
            def.repeatable = true;
            self.skip(Kind::Name);
        }
        self.expect_keyword("on");
        self.skip(Kind::Pipe);
        def.locations.push(self.directive_location());
        while self.skip(Kind::Pipe) && self.err.is_none() {
            def.locations.push(self.directive_location());
        }
        def
    }

    fn directive_location(&mut self) -> String {
        let (tok, _) = self.expect(Kind::Name);
        const LOCATIONS: &[&str] = &[
            "QUERY",
            "MUTATION",
            "SUBSCRIPTION",
            "FIELD",
            "FRAGMENT_DEFINITION",
            "FRAGMENT_SPREAD",
            "INLINE_FRAGMENT",
            "VARIABLE_DEFINITION",
            "SCHEMA",
            "SCALAR",
            "OBJECT",
            "FIELD_DEFINITION",
            "ARGUMENT_DEFINITION",
            "INTERFACE",
            "UNION",
            "ENUM",
            "ENUM_VALUE",
            "INPUT_OBJECT",
            "INPUT_FIELD_DEFINITION",
        ];
        if LOCATIONS.contains(&tok.value.as_str()) {
            return tok.value;
        }
        self.unexpected_token(&tok);
        String::new()
    }
}

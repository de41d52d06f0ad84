//! gqlparser's AST (github.com/vektah/gqlparser/v2/ast as OPA vendors it), with the fields OPA
//! shows and the positions its error messages name.

/// A place in the source: line and column, both from 1 (0: unknown, as for a decoded object).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: isize,
    pub col: isize,
}

pub type Comments = Option<Vec<String>>;

#[derive(Default, Debug)]
pub struct QueryDocument {
    pub operations: Vec<OperationDefinition>,
    pub fragments: Vec<FragmentDefinition>,
}

#[derive(Default, Debug)]
pub struct OperationDefinition {
    pub operation: String,
    pub name: String,
    pub variables: Vec<VariableDefinition>,
    pub directives: Vec<Directive>,
    pub selections: Vec<Selection>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug)]
pub struct VariableDefinition {
    pub variable: String,
    pub ty: Type,
    pub default: Option<Value>,
    pub directives: Vec<Directive>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Debug)]
pub enum Selection {
    Field(Field),
    Spread(FragmentSpread),
    Inline(InlineFragment),
}

#[derive(Default, Debug)]
pub struct Field {
    pub alias: String,
    pub name: String,
    pub arguments: Vec<Argument>,
    pub directives: Vec<Directive>,
    pub selections: Vec<Selection>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct Argument {
    pub name: String,
    pub value: Value,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug)]
pub struct FragmentSpread {
    pub name: String,
    pub directives: Vec<Directive>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug)]
pub struct InlineFragment {
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selections: Vec<Selection>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug)]
pub struct FragmentDefinition {
    pub name: String,
    pub variables: Vec<VariableDefinition>,
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selections: Vec<Selection>,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub pos: Pos,
}

/// gqlparser's `ValueKind`, shown as its number.
pub mod kind {
    pub const VARIABLE: i64 = 0;
    pub const INT: i64 = 1;
    pub const FLOAT: i64 = 2;
    pub const STRING: i64 = 3;
    pub const BLOCK: i64 = 4;
    pub const BOOLEAN: i64 = 5;
    pub const NULL: i64 = 6;
    pub const ENUM: i64 = 7;
    pub const LIST: i64 = 8;
    pub const OBJECT: i64 = 9;
}

#[derive(Default, Debug, Clone)]
pub struct Value {
    pub raw: String,
    pub children: Vec<ChildValue>,
    pub kind: i64,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct ChildValue {
    pub name: String,
    pub value: Value,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub named: String,
    pub elem: Option<Box<Type>>,
    pub non_null: bool,
    pub pos: Pos,
}

impl Type {
    pub fn named(name: &str, non_null: bool) -> Type {
        Type {
            named: name.to_string(),
            non_null,
            ..Type::default()
        }
    }

    /// The innermost named type.
    pub fn name(&self) -> &str {
        match &self.elem {
            Some(e) => e.name(),
            None => &self.named,
        }
    }

    /// As GraphQL writes it: `[Int!]!`.
    pub fn text(&self) -> String {
        let inner = match &self.elem {
            Some(e) => format!("[{}]", e.text()),
            None => self.named.clone(),
        };
        if self.non_null { inner + "!" } else { inner }
    }

    /// gqlparser's `IsCompatible`: whether a variable of this type may stand where `other` is
    /// expected.
    pub fn is_compatible(&self, other: &Type) -> bool {
        if self.named != other.named {
            return false;
        }
        match (&self.elem, &other.elem) {
            (Some(_), None) => return false,
            (Some(a), Some(b)) if !a.is_compatible(b) => return false,
            _ => {}
        }
        if other.non_null {
            return self.non_null;
        }
        true
    }
}

#[derive(Default, Debug, Clone)]
pub struct SchemaDocument {
    pub schema: Vec<SchemaDefinition>,
    pub schema_extension: Vec<SchemaDefinition>,
    pub directives: Vec<DirectiveDefinition>,
    pub definitions: Vec<Definition>,
    pub extensions: Vec<Definition>,
    pub comment: Comments,
}

#[derive(Default, Debug, Clone)]
pub struct SchemaDefinition {
    pub description: String,
    pub directives: Vec<Directive>,
    pub operation_types: Vec<OperationTypeDefinition>,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub end_comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct OperationTypeDefinition {
    pub operation: String,
    pub ty: String,
    pub comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct Definition {
    pub kind: String,
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub interfaces: Vec<String>,
    pub fields: Vec<FieldDefinition>,
    pub types: Vec<String>,
    pub enum_values: Vec<EnumValueDefinition>,
    pub builtin: bool,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub end_comment: Comments,
    pub pos: Pos,
}

impl Definition {
    pub fn field(&self, name: &str) -> Option<&FieldDefinition> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn is_leaf(&self) -> bool {
        self.kind == "ENUM" || self.kind == "SCALAR"
    }
    pub fn is_abstract(&self) -> bool {
        self.kind == "INTERFACE" || self.kind == "UNION"
    }
    pub fn is_composite(&self) -> bool {
        matches!(self.kind.as_str(), "OBJECT" | "INTERFACE" | "UNION")
    }
    pub fn is_input(&self) -> bool {
        matches!(self.kind.as_str(), "SCALAR" | "ENUM" | "INPUT_OBJECT")
    }
}

/// A field of an object or interface (with arguments) or of an input object (with a default).
#[derive(Default, Debug, Clone)]
pub struct FieldDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub default: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct ArgumentDefinition {
    pub description: String,
    pub name: String,
    pub default: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct EnumValueDefinition {
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub pos: Pos,
}

#[derive(Default, Debug, Clone)]
pub struct DirectiveDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub locations: Vec<String>,
    pub repeatable: bool,
    pub before_comment: Comments,
    pub after_comment: Comments,
    pub pos: Pos,
}

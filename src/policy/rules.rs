//! What a compiled policy declares: its packages and rules, with positions. Used to find the
//! decision rules, to discover `test_*` rules, and by `sluice check`.

use regorus::Engine;
use regorus::unstable::{Rule, RuleHead};

/// One rule definition (a rule with several bodies or definitions appears once per definition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// `data.a.b`
    pub package: String,
    /// The head's reference without the package, e.g. `allow` or `test_x`.
    pub name: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// A function (`f(x) if ...`); functions are never tests.
    pub function: bool,
}

impl RuleInfo {
    pub fn path(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }
}

/// Every rule of every module, in module order then source order.
pub fn declared_rules(engine: &mut Engine) -> Vec<RuleInfo> {
    let mut out = Vec::new();
    for module in engine.get_modules().iter() {
        let Ok(package) = regorus::utils::get_path_string(&module.package.refr, Some("data"))
        else {
            continue;
        };
        for rule in &module.policy {
            let (refr, function) = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
                    RuleHead::Func { refr, .. } => (refr, true),
                },
                Rule::Default { refr, args, .. } => (refr, !args.is_empty()),
            };
            let Ok(name) = regorus::utils::get_path_string(refr, None) else {
                continue;
            };
            let span = rule.span();
            out.push(RuleInfo {
                package: package.clone(),
                name,
                file: span.source.get_path().clone(),
                line: span.line,
                col: span.col,
                function,
            });
        }
    }
    out
}

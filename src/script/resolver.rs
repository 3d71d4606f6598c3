//! `import "name" as x;`: the importing rule's own folder first, then the stdlib
//! embedded in the binary, and nothing else. Rhai's FileModuleResolver would follow
//! `../` anywhere on disk; this one refuses paths that try to leave.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// The stdlib modules, compiled into the binary.
pub const STDLIB: &[(&str, &str)] = &[
    ("activity", include_str!("../../stdlib/activity.rhai")),
    ("campaign", include_str!("../../stdlib/campaign.rhai")),
];

/// The text of a module an error points into: an embedded stdlib module by its
/// `stdlib/NAME.rhai` key, else the file on disk.
pub fn module_text(file: &Path) -> Option<String> {
    let key = file.to_string_lossy();
    let embedded = key
        .strip_prefix("stdlib/")
        .and_then(|name| name.strip_suffix(".rhai"))
        .and_then(|name| STDLIB.iter().find(|(n, _)| *n == name));
    match embedded {
        Some((_, text)) => Some(text.to_string()),
        None => std::fs::read_to_string(file).ok(),
    }
}

#[derive(Default)]
pub struct RuleModules {
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

fn refuse(path: &str, why: &str, pos: Position) -> Box<EvalAltResult> {
    // Not ErrorModuleNotFound: Rhai replaces that one's text with the bare path.
    EvalAltResult::ErrorRuntime(format!("import \"{path}\" refused: {why}").into(), pos).into()
}

/// A module name: letters, digits, `_`, `-` and `/` between them; no `..`, no root.
fn valid_name(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

impl ModuleResolver for RuleModules {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if !valid_name(path) {
            return Err(refuse(
                path,
                "imports name a module in the rule's folder or the stdlib; paths with '..' or a leading '/' are refused",
                pos,
            ));
        }
        let name = path.trim_end_matches(".rhai");
        let local: Option<PathBuf> = source
            .map(Path::new)
            .and_then(Path::parent)
            .map(|dir| dir.join(format!("{name}.rhai")))
            .filter(|file| file.is_file());
        let (key, text, file) = match &local {
            Some(file) => {
                let text =
                    std::fs::read_to_string(file).map_err(|e| refuse(path, &e.to_string(), pos))?;
                (file.display().to_string(), text, Some(file.clone()))
            }
            None => match STDLIB.iter().find(|(n, _)| *n == name) {
                Some((_, text)) => (format!("stdlib/{name}.rhai"), text.to_string(), None),
                None => {
                    return Err(refuse(
                        path,
                        "not in the rule's folder nor in the stdlib",
                        pos,
                    ));
                }
            },
        };
        if let Some(module) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(module.clone());
        }
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(key.clone(), e.into(), pos)))?;
        ast.set_source(
            file.map(|f| f.display().to_string())
                .unwrap_or_else(|| key.clone()),
        );
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(key.clone(), e, pos)))?;
        let module = Shared::new(module);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, module.clone());
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_cannot_leave_the_allowed_folders() {
        assert!(valid_name("activity"));
        assert!(valid_name("lib/helpers"));
        assert!(!valid_name("../secret"));
        assert!(!valid_name("lib/../../etc/passwd"));
        assert!(!valid_name("/etc/passwd"));
        assert!(!valid_name("./x"));
    }
}

//! A rule set: every rule compiled once and its top level run once, then each event
//! handed to each rule's `on_event` without running the top level again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Module, Scope};

use crate::actions::Action;
use crate::script::engine::{self, OUT_OF_TIME};
use crate::script::resolver::module_text;
use crate::script::{Frame, Host, InFlight, Limits, ScriptError};

pub struct Rule {
    pub name: String,
    pub path: PathBuf,
    /// The text this rule was compiled from (the daemon may run an older text than the
    /// file now holds), for the source line of its errors.
    source: Arc<str>,
    /// `fn __call(event) { rule_N::on_event(event) }`: the rule's own AST is evaluated
    /// once into a module registered as `rule_N`, whose functions keep their imports.
    call: AST,
}

pub struct RuleSet {
    engine: Engine,
    in_flight: Arc<InFlight>,
    pub rules: Vec<Rule>,
}

/// What one rule made of one event.
pub struct Evaluation<'a> {
    pub rule: &'a Rule,
    pub result: Result<Vec<Action>, ScriptError>,
}

/// Every `.rhai` file named, or directly inside a folder named, in a stable order.
pub fn script_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "rhai") && p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no .rhai files in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(files)
}

/// A script file's path and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Reads every script file `script_files` finds.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, ScriptError> {
    let files = script_files(paths)
        .map_err(|message| ScriptError::without_position(Path::new(""), message))?;
    files
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Source { path, text }),
            Err(e) => Err(ScriptError::without_position(&path, e.to_string())),
        })
        .collect()
}

/// A compiled file: a rule when it defines `fn on_event(event)`, else a module.
struct Compiled {
    path: PathBuf,
    source: Arc<str>,
    ast: AST,
    is_rule: bool,
    name: String,
}

fn compile(engine: &Engine, path: &Path, text: &str) -> Result<Compiled, ScriptError> {
    let mut ast = engine
        .compile(text)
        .map_err(|e| ScriptError::from_parse(path, &e).with_source_text(text))?;
    ast.set_source(path.display().to_string());
    let is_rule = ast
        .iter_functions()
        .any(|f| f.name == "on_event" && f.params.len() == 1);
    let name = ast
        .iter_literal_variables(true, false)
        .find(|(var, _, _)| *var == "NAME")
        .and_then(|(_, _, value)| value.into_immutable_string().ok())
        .map(|s| s.to_string())
        .unwrap_or_else(|| {
            path.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    Ok(Compiled {
        path: path.to_path_buf(),
        source: text.into(),
        ast,
        is_rule,
        name,
    })
}

fn describe(err: &EvalAltResult, in_flight: &InFlight, rule: &str) -> Option<String> {
    match err {
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == OUT_OF_TIME => {
            Some(format!(
                "rule '{rule}' ran past its time budget of {} ms and was stopped",
                in_flight.budget().as_millis()
            ))
        }
        EvalAltResult::ErrorTooManyOperations(_) => Some(format!(
            "rule '{rule}' ran past its operation limit and was stopped"
        )),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => describe(inner, in_flight, rule),
        _ => None,
    }
}

fn script_error(
    path: &Path,
    source: &str,
    err: &EvalAltResult,
    in_flight: &InFlight,
    rule: &str,
) -> ScriptError {
    let error = ScriptError::from_eval(path, err);
    // Inside the rule, its compiled text; inside an imported module, that module's.
    let mut error = if error.file == path {
        error.with_source_text(source)
    } else {
        let text = module_text(&error.file).unwrap_or_default();
        error.with_source_text(&text)
    };
    if let Some(message) = describe(err, in_flight, rule) {
        error.message = message;
    }
    error
}

impl RuleSet {
    /// Compiles every file and runs each rule's top level once. Returns every error, not
    /// only the first.
    pub fn load(paths: &[PathBuf], limits: &Limits) -> Result<RuleSet, Vec<ScriptError>> {
        let sources = read_sources(paths).map_err(|e| vec![e])?;
        let (rules, mut errors) = RuleSet::build(&sources, limits);
        if rules.rules.is_empty() && errors.is_empty() {
            errors.push(ScriptError::without_position(
                paths.first().map_or(Path::new(""), |p| p.as_path()),
                "no rules: a rule is a .rhai file that defines fn on_event(event)",
            ));
        }
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// Builds a rule set from every source that compiles and loads; the errors of the
    /// others come back beside it (the daemon keeps serving the good ones).
    pub fn build(sources: &[Source], limits: &Limits) -> (RuleSet, Vec<ScriptError>) {
        let (mut engine, in_flight) = engine::build(limits);
        let mut errors = Vec::new();
        let compiled: Vec<Compiled> = sources
            .iter()
            .filter_map(|source| {
                compile(&engine, &source.path, &source.text)
                    .map_err(|e| errors.push(e))
                    .ok()
            })
            .collect();
        let mut rules = Vec::new();
        for (index, file) in compiled.into_iter().filter(|c| c.is_rule).enumerate() {
            // Summaries, metrics and action keys go by name: two rules cannot share one.
            if let Some(other) = rules.iter().find(|r: &&Rule| r.name == file.name) {
                errors.push(ScriptError::without_position(
                    &file.path,
                    format!(
                        "the rule name '{}' is taken by {}; set a different const NAME",
                        file.name,
                        other.path.display()
                    ),
                ));
                continue;
            }
            in_flight.start(&file.name);
            let module = Module::eval_ast_as_new(Scope::new(), &file.ast, &engine);
            in_flight.finish();
            let module = match module {
                Ok(module) => module,
                Err(err) => {
                    errors.push(script_error(
                        &file.path,
                        &file.source,
                        &err,
                        &in_flight,
                        &file.name,
                    ));
                    continue;
                }
            };
            let alias = format!("rule_{index}");
            engine.register_static_module(alias.as_str(), module.into());
            let call = engine
                .compile(format!("fn __call(event) {{ {alias}::on_event(event) }}"))
                .expect("the call stub compiles");
            rules.push(Rule {
                name: file.name,
                path: file.path,
                source: file.source,
                call,
            });
        }
        (
            RuleSet {
                engine,
                in_flight,
                rules,
            },
            errors,
        )
    }

    /// Compiles every file without running anything, as `rulesforce check` does: syntax,
    /// and for rules the presence of `on_event`.
    pub fn check(paths: &[PathBuf]) -> Result<usize, Vec<ScriptError>> {
        let sources = read_sources(paths).map_err(|e| vec![e])?;
        let (engine, _) = engine::build(&Limits::default());
        let mut errors = Vec::new();
        let mut rules = 0;
        for source in &sources {
            match compile(&engine, &source.path, &source.text) {
                Ok(compiled) => rules += usize::from(compiled.is_rule),
                Err(err) => errors.push(err),
            }
        }
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// Runs every rule on one event. A rule that fails on it queues nothing for it.
    pub fn evaluate(
        &self,
        host: &Arc<Host>,
        event: &Dynamic,
        event_ref: &str,
    ) -> Vec<Evaluation<'_>> {
        self.rules
            .iter()
            .map(|rule| {
                let frame = Frame::new(host.clone(), &rule.name, event_ref);
                let options = CallFnOptions::new()
                    .eval_ast(false)
                    .rewind_scope(true)
                    .with_tag(Dynamic::from(frame.clone()));
                self.in_flight.start(&rule.name);
                let outcome = self.engine.call_fn_with_options::<Dynamic>(
                    options,
                    &mut Scope::new(),
                    &rule.call,
                    "__call",
                    (event.clone(),),
                );
                self.in_flight.finish();
                let result = match outcome {
                    Ok(_) => Ok(frame.take_actions()),
                    Err(err) => Err(script_error(
                        &rule.path,
                        &rule.source,
                        &err,
                        &self.in_flight,
                        &rule.name,
                    )),
                };
                Evaluation { rule, result }
            })
            .collect()
    }
}

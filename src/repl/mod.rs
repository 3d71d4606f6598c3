//! `rulesforce repl`: one scope for the session (variables and functions persist), the
//! script API with writes sent at once, and the `:` commands.

mod helper;
pub mod input;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Module, Scope};
use serde_json::Value;

pub use helper::ReplHelper;

use crate::actions::Action;
use crate::config::Settings;
use crate::counters::MemoryCounters;
use crate::salesforce::{ApiRequest, Client};
use crate::script::host::Connection;
use crate::script::{Frame, Host, Limits, ScriptError, WriteMode, engine};

/// Longest output shown before it is cut with a note.
const MAX_LINES: usize = 200;

pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "the API, grouped; :help NAME for one function"),
    (
        ":load FILE",
        "compile a rule file into the session so its functions can be called",
    ),
    (
        ":event FILE|JSON",
        "run the loaded rule's on_event on one event and show the actions it plans",
    ),
    (":vars", "the session's variables"),
    (
        ":login",
        "log in again (after changing settings or when the session expired)",
    ),
    (":limits", "the org's API limits"),
    (
        ":dry on|off",
        "print write requests instead of sending them",
    ),
    (":quit", "leave (or Ctrl-D)"),
];

/// What a line produced.
pub enum Reply {
    /// Text to show (a value, a command's output), possibly empty.
    Text(String),
    Quit,
}

pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Function definitions so far; statements are cleared after each evaluation.
    functions: AST,
    client: Client,
    settings: Settings,
    runtime: tokio::runtime::Handle,
    /// The API's function names, read once from the engine's metadata.
    api_names: Vec<String>,
    held: Arc<std::sync::Mutex<Vec<ApiRequest>>>,
    dry: bool,
    /// The `:load`ed rule file and the text it was compiled from.
    loaded: Option<(PathBuf, String)>,
}

impl Session {
    /// `settings` are what the connection was made from; `:login FLOW` remakes it with
    /// another flow.
    pub fn new(client: Client, settings: Settings, runtime: tokio::runtime::Handle) -> Session {
        let (mut engine, _) = engine::build(&Limits::default());
        // Unlike in rules, print is for the person at the prompt.
        engine.on_print(|text| println!("{text}"));
        let mut session = Session {
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            client,
            settings,
            runtime,
            api_names: Vec::new(),
            held: Arc::default(),
            dry: false,
            loaded: None,
        };
        session.connect(session.client.clone());
        session.api_names = session.api().into_iter().map(|f| f.name).collect();
        session
    }

    /// Makes `client` the session's connection: for the API calls and as `sf`.
    fn connect(&mut self, client: Client) {
        self.client = client;
        self.install_frame(WriteMode::Immediate);
        self.scope.set_or_push(
            "sf",
            Connection {
                client: self.client.clone(),
                default: true,
            },
        );
    }

    /// `:login` logs in again; `:login FLOW` switches to another flow first.
    fn login(&mut self, flow: &str) -> String {
        if !flow.is_empty() {
            let mut settings = self.settings.clone();
            settings.auth_flow = Some(flow.to_string());
            match Client::from_settings(&settings) {
                Ok(client) => {
                    self.settings = settings;
                    self.connect(client);
                }
                Err(e) => return format!("error: {e}"),
            }
        }
        let client = self.client.clone();
        self.runtime.block_on(client.logout());
        match self.runtime.block_on(client.identity()) {
            Ok(identity) => format!(
                "logged in as {} at {} ({} flow)",
                identity.username,
                identity.instance_url,
                client.flow().name()
            ),
            Err(e) => format!("error: {e}"),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The connection the API calls go through: the real one, or a dry-run one.
    fn active_client(&self) -> Client {
        if self.dry {
            self.client.dry_run(self.held.clone())
        } else {
            self.client.clone()
        }
    }

    fn install_frame(&mut self, mode: WriteMode) -> Frame {
        let host = Host::new(
            Some(self.active_client()),
            self.runtime.clone(),
            Arc::new(MemoryCounters::default()),
        );
        let frame = Frame::with_mode(host, "repl", "repl", mode);
        self.engine.set_default_tag(Dynamic::from(frame.clone()));
        frame
    }

    /// Names for completion: the API, the session's variables and functions, the commands.
    pub fn names(&self) -> Vec<String> {
        let mut names = self.api_names.clone();
        names.extend(self.scope.iter_raw().map(|(name, _, _)| name.to_string()));
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        names.extend(
            COMMANDS
                .iter()
                .map(|(c, _)| c.split(' ').next().unwrap_or(c).to_string()),
        );
        names.sort();
        names.dedup();
        names
    }

    /// Runs one complete input: a `:` command or Rhai code.
    pub fn run(&mut self, input: &str) -> Reply {
        let trimmed = input.trim();
        if let Some(command) = trimmed.strip_prefix(':') {
            return self.command(command);
        }
        match self.eval(input) {
            Ok(value) => Reply::Text(self.show_with_held(&value)),
            Err(error) => Reply::Text(format!("error: {error}")),
        }
    }

    /// Evaluates Rhai code in the session scope; returns its value.
    pub fn eval(&mut self, input: &str) -> Result<Dynamic, ScriptError> {
        let source = Path::new("<repl>");
        let ast = self
            .engine
            .compile_with_scope(&self.scope, input)
            .map_err(|e| ScriptError::from_parse(source, &e).with_source_text(input))?;
        let mut merged = self.functions.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged);
        merged.clear_statements();
        self.functions = merged;
        result.map_err(|e| ScriptError::from_eval(source, &e).with_source_text(input))
    }

    /// A value as the REPL shows it: JSON, indented for maps and arrays.
    pub fn show(value: &Dynamic) -> String {
        if value.is_unit() {
            return String::new();
        }
        if value.is::<Connection>() {
            return "<Salesforce connection>".into();
        }
        let text = match rhai::serde::from_dynamic::<Value>(value) {
            Ok(json @ (Value::Object(_) | Value::Array(_))) => {
                serde_json::to_string_pretty(&json).unwrap_or_default()
            }
            Ok(json) => json.to_string(),
            Err(_) => value.to_string(),
        };
        truncate(&text)
    }

    /// The value, preceded by any write requests `:dry on` held back.
    fn show_with_held(&self, value: &Dynamic) -> String {
        let held: Vec<ApiRequest> =
            std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out: Vec<String> = held
            .iter()
            .map(|r| {
                format!(
                    "(dry run, not sent)\n{}",
                    r.display(&self.client.data_path())
                )
            })
            .collect();
        let shown = Session::show(value);
        if !shown.is_empty() {
            out.push(shown);
        }
        out.join("\n")
    }

    fn command(&mut self, command: &str) -> Reply {
        let (name, argument) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let argument = argument.trim();
        let text = match name {
            "quit" | "q" | "exit" => return Reply::Quit,
            "help" | "h" => self.help(argument),
            "vars" => self.vars(),
            "load" => self.load(argument),
            "event" => self.event(argument),
            "login" => self.login(argument),
            "limits" => match self.runtime.block_on(self.client.limits()) {
                Ok(limits) => truncate(&serde_json::to_string_pretty(&limits).unwrap_or_default()),
                Err(e) => format!("error: {e}"),
            },
            "dry" => match argument {
                "on" | "off" => {
                    self.dry = argument == "on";
                    self.install_frame(WriteMode::Immediate);
                    format!(
                        "dry run {argument}: writes are {}",
                        if self.dry {
                            "printed, not sent"
                        } else {
                            "sent"
                        }
                    )
                }
                _ => format!(
                    "dry run is {}; :dry on|off",
                    if self.dry { "on" } else { "off" }
                ),
            },
            other => format!("error: unknown command :{other}; :help lists them"),
        };
        Reply::Text(text)
    }

    fn api(&self) -> Vec<ApiFunction> {
        let json = self
            .engine
            .gen_fn_metadata_to_json(false)
            .unwrap_or_default();
        let metadata: Value = serde_json::from_str(&json).unwrap_or_default();
        metadata["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let doc = f["docComments"]
                    .as_array()?
                    .first()?
                    .as_str()?
                    .trim_start_matches("/// ")
                    .to_string();
                let (group, about) = doc
                    .split_once(": ")
                    .map(|(g, a)| (g.to_string(), a.to_string()))?;
                // Connection methods are documented "connection: reads: ...".
                let about = match about.split_once(": ") {
                    Some((_, rest)) if group == "connection" => rest.to_string(),
                    _ => about,
                };
                let signature = f["signature"]
                    .as_str()?
                    .replace(": Dynamic", "")
                    .replace("ImmutableString", "string");
                // Native functions' return types are Rust types; the about line says what comes back.
                let signature = signature
                    .split(" -> ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                Some(ApiFunction {
                    name: f["name"].as_str()?.to_string(),
                    group,
                    about,
                    signature,
                })
            })
            .collect()
    }

    fn help(&self, name: &str) -> String {
        let api = self.api();
        if !name.is_empty() {
            let matching: Vec<String> = api
                .iter()
                .filter(|f| f.name == name)
                .map(|f| format!("{}\n    {}", f.signature, f.about))
                .collect();
            return if matching.is_empty() {
                format!("no function named {name}; :help lists them")
            } else {
                matching.join("\n")
            };
        }
        let mut out = String::new();
        for group in ["writes", "reads", "helpers", "connections", "connection"] {
            let title = match group {
                "writes" => "Writes (sent at once here; queued as actions in rules)",
                "reads" => "Reads",
                "helpers" => "Helpers",
                "connections" => "Connections",
                _ => "Methods on a connection (sf.query(...)): every read and write above",
            };
            out.push_str(&format!("{title}\n"));
            if group == "connection" {
                continue;
            }
            for f in api.iter().filter(|f| f.group == group) {
                out.push_str(&format!("  {:58} {}\n", f.signature, f.about));
            }
        }
        out.push_str("\nCommands\n");
        for (command, about) in COMMANDS {
            out.push_str(&format!("  {command:18} {about}\n"));
        }
        out.push_str("\nThe variable sf is the session's connection.");
        out
    }

    fn vars(&self) -> String {
        let vars: Vec<String> = self
            .scope
            .iter_raw()
            .map(|(name, constant, value)| {
                let shown = Session::show(value)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect::<String>();
                format!("{}{name} = {shown}", if constant { "const " } else { "" })
            })
            .collect();
        if vars.is_empty() {
            "no variables".into()
        } else {
            vars.join("\n")
        }
    }

    /// Compiles a rule file into the session: its functions become callable, with the
    /// imports they need, and `:event` runs its `on_event`.
    fn load(&mut self, path: &str) -> String {
        if path.is_empty() {
            return "error: :load FILE".into();
        }
        let path = PathBuf::from(path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => return format!("error: {}: {e}", path.display()),
        };
        let mut ast = match self.engine.compile(&text) {
            Ok(ast) => ast,
            Err(e) => {
                return format!(
                    "error: {}",
                    ScriptError::from_parse(&path, &e).with_source_text(&text)
                );
            }
        };
        ast.set_source(path.display().to_string());
        let module = match Module::eval_ast_as_new(Scope::new(), &ast, &self.engine) {
            Ok(module) => module,
            Err(e) => {
                return format!(
                    "error: {}",
                    ScriptError::from_eval(&path, &e).with_source_text(&text)
                );
            }
        };
        let names: Vec<String> = ast
            .iter_functions()
            .map(|f| format!("{}({})", f.name, f.params.join(", ")))
            .collect();
        self.engine.register_global_module(module.into());
        let shown = format!("loaded {}: {}", path.display(), names.join(", "));
        self.loaded = Some((path, text));
        shown
    }

    /// Runs the loaded rule's `on_event` on one event; shows the planned actions, sends nothing.
    fn event(&mut self, argument: &str) -> String {
        let Some((loaded, source)) = self.loaded.clone() else {
            return "error: :load a rule first".into();
        };
        let text = if argument.trim_start().starts_with('{') {
            argument.to_string()
        } else {
            match std::fs::read_to_string(argument) {
                Ok(text) => text,
                Err(e) => return format!("error: {argument}: {e}"),
            }
        };
        let event: Value = match serde_json::from_str(text.trim()) {
            Ok(event @ Value::Object(_)) => event,
            Ok(_) => return "error: an event is a JSON object".into(),
            Err(e) => return format!("error: the event is not JSON: {e}"),
        };
        let frame = self.install_frame(WriteMode::Queue);
        let result = rhai::serde::to_dynamic(&event)
            .map_err(|e| e.to_string())
            .and_then(|event| {
                let mut scope = Scope::new();
                scope.push("__event", event);
                self.engine
                    .eval_with_scope::<Dynamic>(&mut scope, "on_event(__event)")
                    .map_err(|e| {
                        ScriptError::from_eval(&loaded, &e)
                            .with_source_text(&source)
                            .to_string()
                    })
            });
        self.install_frame(WriteMode::Immediate);
        let actions: Vec<Action> = frame.take_actions();
        match result {
            Err(error) => format!("error: {error}"),
            Ok(_) if actions.is_empty() => "no actions planned".into(),
            Ok(_) => {
                let planned: Vec<Value> = actions
                    .iter()
                    .map(|a| serde_json::to_value(&a.operation).unwrap_or_default())
                    .collect();
                format!(
                    "{} action(s) planned, not sent:\n{}",
                    planned.len(),
                    truncate(&serde_json::to_string_pretty(&planned).unwrap_or_default())
                )
            }
        }
    }
}

struct ApiFunction {
    name: String,
    group: String,
    about: String,
    signature: String,
}

fn truncate(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_LINES {
        return text.to_string();
    }
    format!(
        "{}\n… ({} more lines not shown)",
        lines[..MAX_LINES].join("\n"),
        lines.len() - MAX_LINES
    )
}

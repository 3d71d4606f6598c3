//! The script API: every function of DESIGN.md's two tables, as global functions and
//! as methods on a connection (`sf.query(...)`). Writes queue Actions; reads run now.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext};
use serde_json::Value;

use super::host::{Connection, Frame, expect_id};
use crate::actions::{Operation, Person};
use crate::config::Settings;
use crate::counters::parse_window;
use crate::salesforce::{Client, Fields, soql};
use crate::template::{self, Escape};

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(message.into().into())
}

/// The evaluation in progress, from the call tag the rule runner sets.
fn frame(ctx: &NativeCallContext) -> Result<Frame> {
    match ctx.tag().and_then(|tag| tag.clone().try_cast::<Frame>()) {
        Some(frame) => Ok(frame),
        None => fail(format!(
            "{}() talks to Salesforce, which rules do inside fn on_event(event), not at the top level of a file",
            ctx.fn_name()
        )),
    }
}

fn text(function: &str, what: &str, value: &Dynamic) -> Result<String> {
    match value.clone().into_immutable_string() {
        Ok(s) => Ok(s.to_string()),
        Err(actual) => fail(format!("{function}: {what} must be a string, not {actual}")),
    }
}

fn fields(function: &str, value: &Dynamic) -> Result<Fields> {
    if !value.is_map() {
        return fail(format!(
            "{function}: fields must be a map like #{{ Status: \"Sent\" }}, not {}",
            value.type_name()
        ));
    }
    match rhai::serde::from_dynamic::<Value>(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => fail(format!(
            "{function}: fields must be a map of field names to values"
        )),
    }
}

fn sobject(function: &str, value: &Dynamic) -> Result<String> {
    let name = text(function, "the object type", value)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail(format!(
            "{function}: '{name}' is not an sObject type name like Campaign or My_Object__c"
        ));
    }
    Ok(name)
}

fn to_dynamic(value: &Value) -> Result<Dynamic> {
    rhai::serde::to_dynamic(value)
}

fn sf_error(function: &str, err: impl std::fmt::Display) -> Box<EvalAltResult> {
    format!("{function}: {err}").into()
}

const CAMPAIGN: &[&str] = &["701"];

fn campaign_id(function: &str, value: &Dynamic) -> Result<crate::salesforce::SfId> {
    Ok(expect_id(
        function,
        "the campaign",
        &text(function, "the campaign id", value)?,
        CAMPAIGN,
    )?)
}
const PERSON: &[&str] = &["00Q", "003"];
const MEMBER: &[&str] = &["00Q", "003", "00v"];

/// The client a call goes through: the connection's, or the host's default one.
fn client<'a>(frame: &'a Frame, connection: Option<&'a Connection>) -> Result<&'a Client> {
    match connection {
        Some(connection) => Ok(&connection.client),
        None => frame.host().client().map_err(Into::into),
    }
}

/// Queues a write, refusing it through a connection other than the default one (the
/// dispatcher delivers through the default connection only).
fn queue(
    frame: &Frame,
    connection: Option<&Connection>,
    function: &str,
    operation: Operation,
) -> Result<()> {
    if connection.is_some_and(|c| !c.default) {
        return fail(format!(
            "{function}: rules write through the configured connection; a connection from login(map) or connect() can only read"
        ));
    }
    frame.queue(operation);
    Ok(())
}

// ---- writes ----

fn update_campaign(
    frame: &Frame,
    conn: Option<&Connection>,
    id: &Dynamic,
    values: &Dynamic,
) -> Result<()> {
    let f = "update_campaign";
    let id = expect_id(
        f,
        "the campaign",
        &text(f, "the campaign id", id)?,
        CAMPAIGN,
    )?;
    let fields = fields(f, values)?;
    queue(
        frame,
        conn,
        f,
        Operation::Update {
            sobject: "Campaign".into(),
            id: id.to_string(),
            fields,
        },
    )
}

fn add_to_campaign(
    frame: &Frame,
    conn: Option<&Connection>,
    campaign: &Dynamic,
    member: &Dynamic,
    status: &Dynamic,
) -> Result<()> {
    let f = "add_to_campaign";
    let campaign = campaign_id(f, campaign)?;
    let person = expect_id(f, "the member", &text(f, "the member id", member)?, PERSON)?;
    let status = text(f, "the status", status)?;
    queue(
        frame,
        conn,
        f,
        Operation::AddMember {
            campaign_id: campaign.to_string(),
            person: Person::Id(person.to_string()),
            status,
        },
    )
}

fn add_by_email(
    frame: &Frame,
    conn: Option<&Connection>,
    campaign: &Dynamic,
    email: &Dynamic,
    status: &Dynamic,
) -> Result<()> {
    let f = "add_to_campaign_by_email";
    let campaign = campaign_id(f, campaign)?;
    let email = text(f, "the email", email)?;
    if !email.contains('@') {
        return fail(format!("{f}: '{email}' is not an email address"));
    }
    let status = text(f, "the status", status)?;
    queue(
        frame,
        conn,
        f,
        Operation::AddMember {
            campaign_id: campaign.to_string(),
            person: Person::Email(email.to_lowercase()),
            status,
        },
    )
}

fn set_member_status(
    frame: &Frame,
    conn: Option<&Connection>,
    campaign: &Dynamic,
    member: &Dynamic,
    status: &Dynamic,
) -> Result<()> {
    let f = "set_member_status";
    let campaign = campaign_id(f, campaign)?;
    let member = expect_id(f, "the member", &text(f, "the member id", member)?, MEMBER)?;
    let status = text(f, "the status", status)?;
    queue(
        frame,
        conn,
        f,
        Operation::SetMemberStatus {
            campaign_id: campaign.to_string(),
            member: member.to_string(),
            status,
        },
    )
}

fn remove_from_campaign(
    frame: &Frame,
    conn: Option<&Connection>,
    campaign: &Dynamic,
    member: &Dynamic,
) -> Result<()> {
    let f = "remove_from_campaign";
    let campaign = campaign_id(f, campaign)?;
    let member = expect_id(f, "the member", &text(f, "the member id", member)?, MEMBER)?;
    queue(
        frame,
        conn,
        f,
        Operation::RemoveMember {
            campaign_id: campaign.to_string(),
            member: member.to_string(),
        },
    )
}

fn record_id(function: &str, sobject: &str, raw: &Dynamic) -> Result<String> {
    let raw = text(function, "the record id", raw)?;
    let prefixes: Vec<&str> = crate::salesforce::id::prefix_for_object(sobject)
        .into_iter()
        .collect();
    if prefixes.is_empty() {
        // A custom object: any well-formed id.
        return crate::salesforce::SfId::parse(&raw)
            .map(|id| id.to_string())
            .map_err(|e| format!("{function}: {e}").into());
    }
    Ok(expect_id(function, &format!("a {sobject} id"), &raw, &prefixes)?.to_string())
}

fn create_record(
    frame: &Frame,
    conn: Option<&Connection>,
    kind: &Dynamic,
    values: &Dynamic,
) -> Result<()> {
    let f = "create_record";
    let sobject = sobject(f, kind)?;
    let fields = fields(f, values)?;
    queue(frame, conn, f, Operation::Create { sobject, fields })
}

fn update_record(
    frame: &Frame,
    conn: Option<&Connection>,
    kind: &Dynamic,
    id: &Dynamic,
    values: &Dynamic,
) -> Result<()> {
    let f = "update_record";
    let sobject = sobject(f, kind)?;
    let id = record_id(f, &sobject, id)?;
    let fields = fields(f, values)?;
    queue(
        frame,
        conn,
        f,
        Operation::Update {
            sobject,
            id,
            fields,
        },
    )
}

fn upsert_record(
    frame: &Frame,
    conn: Option<&Connection>,
    kind: &Dynamic,
    ext: &Dynamic,
    value: &Dynamic,
    values: &Dynamic,
) -> Result<()> {
    let f = "upsert_record";
    let sobject = sobject(f, kind)?;
    let ext_field = sobject_field(f, ext)?;
    let ext_value = if value.is_string() {
        text(f, "the external id value", value)?
    } else {
        value.to_string()
    };
    let fields = fields(f, values)?;
    queue(
        frame,
        conn,
        f,
        Operation::Upsert {
            sobject,
            ext_field,
            ext_value,
            fields,
        },
    )
}

fn sobject_field(function: &str, value: &Dynamic) -> Result<String> {
    let name = text(function, "the external id field", value)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail(format!("{function}: '{name}' is not a field name"));
    }
    Ok(name)
}

fn delete_record(
    frame: &Frame,
    conn: Option<&Connection>,
    kind: &Dynamic,
    id: &Dynamic,
) -> Result<()> {
    let f = "delete_record";
    let sobject = sobject(f, kind)?;
    let id = record_id(f, &sobject, id)?;
    queue(frame, conn, f, Operation::Delete { sobject, id })
}

// ---- reads ----

fn query(frame: &Frame, conn: Option<&Connection>, soql: &str) -> Result<Array> {
    let records = frame
        .host()
        .block_on(client(frame, conn)?.query(soql))
        .map_err(|e| sf_error("query", e))?;
    records
        .iter()
        .map(|r| to_dynamic(&Value::Object(r.clone())))
        .collect()
}

fn query_one(frame: &Frame, conn: Option<&Connection>, soql: &str) -> Result<Dynamic> {
    match frame
        .host()
        .block_on(client(frame, conn)?.query_one(soql))
        .map_err(|e| sf_error("query_one", e))?
    {
        Some(record) => to_dynamic(&Value::Object(record)),
        None => Ok(Dynamic::UNIT),
    }
}

fn get_record(
    frame: &Frame,
    conn: Option<&Connection>,
    kind: &Dynamic,
    id: &Dynamic,
    only: Option<Array>,
) -> Result<Dynamic> {
    let f = "get_record";
    let sobject = sobject(f, kind)?;
    let id = record_id(f, &sobject, id)?;
    let only: Option<Vec<String>> = match only {
        Some(list) => Some(
            list.iter()
                .map(|v| text(f, "each field", v))
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    let record = frame
        .host()
        .block_on(client(frame, conn)?.get_record(&sobject, &id, only.as_deref()))
        .map_err(|e| sf_error(f, e))?;
    to_dynamic(&Value::Object(record))
}

fn find_campaign(frame: &Frame, conn: Option<&Connection>, name: &str) -> Result<Dynamic> {
    let found = match conn.filter(|c| !c.default) {
        Some(other) => frame
            .host()
            .block_on(other.client.find_campaign(name))
            .map_err(|e| sf_error("find_campaign", e))?
            .map(|id| id.to_string()),
        None => frame
            .host()
            .find_campaign(name)
            .map_err(|e| sf_error("find_campaign", e))?,
    };
    Ok(found.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
}

fn identity(frame: &Frame, conn: Option<&Connection>) -> Result<Dynamic> {
    let identity = frame
        .host()
        .block_on(client(frame, conn)?.identity())
        .map_err(|e| sf_error("identity", e))?;
    to_dynamic(&serde_json::to_value(identity).map_err(|e| sf_error("identity", e))?)
}

fn limits(frame: &Frame, conn: Option<&Connection>) -> Result<Dynamic> {
    let limits = frame
        .host()
        .block_on(client(frame, conn)?.limits())
        .map_err(|e| sf_error("limits", e))?;
    to_dynamic(&limits)
}

// ---- helpers ----

fn render(template: &str, data: &Dynamic, escape: Escape) -> Result<String> {
    let data: Value = rhai::serde::from_dynamic(data)?;
    template::render(template, &data, escape).map_err(|e| format!("render: {e}").into())
}

fn once(ctx: &NativeCallContext, key: &str, window: Option<&str>) -> Result<bool> {
    let frame = frame(ctx)?;
    let window = window
        .map(parse_window)
        .transpose()
        .map_err(|e| format!("once: {e}"))?;
    Ok(frame.host().counters.once(key, window))
}

fn count(ctx: &NativeCallContext, key: &str, window: &str) -> Result<i64> {
    let frame = frame(ctx)?;
    let window = parse_window(window).map_err(|e| format!("count: {e}"))?;
    Ok(frame.host().counters.count(key, window) as i64)
}

/// A line in the log, tagged with the rule (or the file, at a rule's top level).
fn log_line(ctx: &NativeCallContext, level: tracing::Level, value: &Dynamic) {
    let rule = ctx
        .tag()
        .and_then(|t| t.clone().try_cast::<Frame>())
        .map(|f| f.rule().to_string());
    let rule = rule
        .or_else(|| ctx.call_source().map(str::to_owned))
        .unwrap_or_default();
    let text = if value.is_string() {
        value.to_string()
    } else {
        format!("{value:?}")
    };
    match level {
        tracing::Level::DEBUG => tracing::debug!(rule = %rule, "{text}"),
        _ => tracing::info!(rule = %rule, "{text}"),
    }
}

fn login_with(ctx: &NativeCallContext, settings: Option<Map>) -> Result<Connection> {
    let frame = frame(ctx)?;
    let Some(map) = settings else {
        return Ok(Connection {
            client: frame.host().client()?.clone(),
            default: true,
        });
    };
    let value: Value = rhai::serde::from_dynamic(&Dynamic::from_map(map))?;
    let settings: Settings = serde_json::from_value(value).map_err(|e| format!("login: {e}"))?;
    let client = Client::from_settings(&settings).map_err(|e| sf_error("login", e))?;
    frame
        .host()
        .block_on(client.session())
        .map_err(|e| sf_error("login", e))?;
    Ok(Connection {
        client,
        default: false,
    })
}

fn connect(ctx: &NativeCallContext, instance_url: &str, token: &str) -> Result<Connection> {
    frame(ctx)?;
    let settings = Settings {
        instance_url: Some(instance_url.into()),
        access_token: Some(token.into()),
        ..Settings::default()
    };
    let client = Client::from_settings(&settings).map_err(|e| sf_error("connect", e))?;
    Ok(Connection {
        client,
        default: false,
    })
}

/// Registers one function under its name, and again as a method on a connection.
macro_rules! both {
    ($engine:ident, $name:literal, |$frame:ident, $conn:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        $engine.register_fn($name, |ctx: NativeCallContext $(, $arg: $ty)*| {
            let $frame = frame(&ctx)?;
            let $conn: Option<&Connection> = None;
            $body
        });
        $engine.register_fn($name, |ctx: NativeCallContext, sf: &mut Connection $(, $arg: $ty)*| {
            let $frame = frame(&ctx)?;
            let $conn = Some(&*sf);
            $body
        });
    };
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Connection>("Connection");

    both!(
        engine,
        "update_campaign",
        |f, c, id: Dynamic, values: Dynamic| update_campaign(&f, c, &id, &values)
    );
    both!(
        engine,
        "add_to_campaign",
        |f, c, campaign: Dynamic, member: Dynamic, status: Dynamic| add_to_campaign(
            &f, c, &campaign, &member, &status
        )
    );
    both!(
        engine,
        "add_to_campaign_by_email",
        |f, c, campaign: Dynamic, email: Dynamic, status: Dynamic| add_by_email(
            &f, c, &campaign, &email, &status
        )
    );
    both!(
        engine,
        "set_member_status",
        |f, c, campaign: Dynamic, member: Dynamic, status: Dynamic| set_member_status(
            &f, c, &campaign, &member, &status
        )
    );
    both!(
        engine,
        "remove_from_campaign",
        |f, c, campaign: Dynamic, member: Dynamic| remove_from_campaign(&f, c, &campaign, &member)
    );
    both!(
        engine,
        "create_record",
        |f, c, kind: Dynamic, values: Dynamic| create_record(&f, c, &kind, &values)
    );
    both!(
        engine,
        "update_record",
        |f, c, kind: Dynamic, id: Dynamic, values: Dynamic| update_record(
            &f, c, &kind, &id, &values
        )
    );
    both!(
        engine,
        "upsert_record",
        |f, c, kind: Dynamic, ext: Dynamic, value: Dynamic, values: Dynamic| upsert_record(
            &f, c, &kind, &ext, &value, &values
        )
    );
    both!(
        engine,
        "delete_record",
        |f, c, kind: Dynamic, id: Dynamic| delete_record(&f, c, &kind, &id)
    );

    both!(engine, "query", |f, c, soql: ImmutableString| query(
        &f, c, &soql
    ));
    both!(
        engine,
        "query_one",
        |f, c, soql: ImmutableString| query_one(&f, c, &soql)
    );
    both!(engine, "get_record", |f, c, kind: Dynamic, id: Dynamic| {
        get_record(&f, c, &kind, &id, None)
    });
    both!(
        engine,
        "get_record",
        |f, c, kind: Dynamic, id: Dynamic, only: Array| get_record(&f, c, &kind, &id, Some(only))
    );
    both!(engine, "find_campaign", |f, c, name: ImmutableString| {
        find_campaign(&f, c, &name)
    });
    both!(engine, "identity", |f, c| identity(&f, c));
    both!(engine, "limits", |f, c| limits(&f, c));

    engine.register_fn("soql_quote", |value: ImmutableString| soql::quote(&value));
    engine.register_fn("soql_quote", |value: Dynamic| {
        soql::quote(&value.to_string())
    });
    engine.register_fn("render", |template: ImmutableString, data: Dynamic| {
        render(&template, &data, Escape::None)
    });
    engine.register_fn("render_json", |template: ImmutableString, data: Dynamic| {
        render(&template, &data, Escape::Json)
    });
    engine.register_fn("once", |ctx: NativeCallContext, key: ImmutableString| {
        once(&ctx, &key, None)
    });
    engine.register_fn(
        "once",
        |ctx: NativeCallContext, key: ImmutableString, window: ImmutableString| {
            once(&ctx, &key, Some(&window))
        },
    );
    engine.register_fn(
        "count",
        |ctx: NativeCallContext, key: ImmutableString, window: ImmutableString| {
            count(&ctx, &key, &window)
        },
    );
    engine.register_fn("log", |ctx: NativeCallContext, value: Dynamic| {
        log_line(&ctx, tracing::Level::INFO, &value)
    });
    engine.register_fn("print", |ctx: NativeCallContext, value: Dynamic| {
        log_line(&ctx, tracing::Level::INFO, &value)
    });
    engine.register_fn("debug", |ctx: NativeCallContext, value: Dynamic| {
        log_line(&ctx, tracing::Level::DEBUG, &value)
    });
    engine.register_fn("login", |ctx: NativeCallContext| login_with(&ctx, None));
    engine.register_fn("login", |ctx: NativeCallContext, settings: Map| {
        login_with(&ctx, Some(settings))
    });
    engine.register_fn(
        "connect",
        |ctx: NativeCallContext, url: ImmutableString, token: ImmutableString| {
            connect(&ctx, &url, &token)
        },
    );
}

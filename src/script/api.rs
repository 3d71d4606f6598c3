//! The script API: every function of DESIGN.md's two tables, as global functions and
//! as methods on a connection (`sf.query(...)`). Writes queue Actions; reads run now.

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, Map,
    NativeCallContext,
};
use serde_json::Value;

use super::host::{Connection, Frame, WriteMode, expect_id};
use crate::actions::{Action, Operation, Person};
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

/// The REPL's writes: sent at once through the connection, the outcome returned as
/// `#{success, id}` or `#{success: false, errorCode, message}`.
fn send_now(
    frame: &Frame,
    connection: Option<&Connection>,
    operation: Operation,
) -> Result<Dynamic> {
    let client = client(frame, connection)?;
    let action = Action {
        rule: frame.rule().to_string(),
        event: "repl".into(),
        operation,
        key: String::new(),
    };
    let outcome = frame
        .host()
        .block_on(crate::dispatch::deliver(
            client,
            std::slice::from_ref(&action),
        ))
        .pop()
        .expect("one outcome per action");
    let value = match outcome {
        Ok(id) if client.is_dry_run() => {
            serde_json::json!({"success": true, "dry_run": true, "id": id})
        }
        Ok(id) => serde_json::json!({"success": true, "id": id}),
        Err(error) => {
            serde_json::json!({"success": false, "errorCode": error.error_code, "message": error.message})
        }
    };
    to_dynamic(&value)
}

/// Queues a write (sends it, in the REPL), refusing it through a connection other than the default one (the
/// dispatcher delivers through the default connection only).
fn queue(
    frame: &Frame,
    connection: Option<&Connection>,
    function: &str,
    operation: Operation,
) -> Result<Dynamic> {
    if connection.is_some_and(|c| !c.default) {
        return fail(format!(
            "{function}: rules write through the configured connection; a connection from login(map) or connect() can only read"
        ));
    }
    match frame.mode() {
        WriteMode::Queue => {
            frame.queue(operation);
            Ok(Dynamic::UNIT)
        }
        WriteMode::Immediate => send_now(frame, connection, operation),
    }
}

// ---- writes ----

fn update_campaign(
    frame: &Frame,
    conn: Option<&Connection>,
    id: &Dynamic,
    values: &Dynamic,
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
) -> Result<Dynamic> {
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
fn log_line(ctx: &NativeCallContext, value: &Dynamic) -> Result<()> {
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
    tracing::info!(rule = %rule, "{text}");
    Ok(())
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

/// Registers one documented function. The doc line reads `group: what it does`; the
/// REPL's `:help` is built from these, so help and API cannot drift apart.
macro_rules! api {
    ($engine:ident, $name:literal, $doc:literal, |$ctx:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        FuncRegistration::new($name)
            .with_params_info::<&str>([$(concat!(stringify!($arg), ": ", stringify!($ty))),*])
            .with_comments([concat!("/// ", $doc)])
            .register_into_engine($engine, |$ctx: NativeCallContext $(, $arg: $ty)*| $body);
    };
}

/// Registers a function under its name, and again as a method on a connection.
macro_rules! both {
    ($engine:ident, $name:literal, $doc:literal, |$frame:ident, $conn:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        api!($engine, $name, $doc, |ctx $(, $arg: $ty)*| {
            let $frame = frame(&ctx)?;
            let $conn: Option<&Connection> = None;
            $body
        });
        FuncRegistration::new($name)
            .with_params_info(["sf: Connection" $(, concat!(stringify!($arg), ": ", stringify!($ty)))*])
            .with_comments([concat!("/// connection: ", $doc)])
            .register_into_engine($engine, |ctx: NativeCallContext, sf: &mut Connection $(, $arg: $ty)*| {
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
        "writes: PATCH the Campaign's fields",
        |f, c, id: Dynamic, fields: Dynamic| update_campaign(&f, c, &id, &fields)
    );
    both!(
        engine,
        "add_to_campaign",
        "writes: add a Lead (00Q) or Contact (003) with a Status; an existing member gets the Status",
        |f, c, campaign_id: Dynamic, member_id: Dynamic, status: Dynamic| add_to_campaign(
            &f,
            c,
            &campaign_id,
            &member_id,
            &status
        )
    );
    both!(
        engine,
        "add_to_campaign_by_email",
        "writes: as add_to_campaign, the Lead or Contact found by email (Contact preferred)",
        |f, c, campaign_id: Dynamic, email: Dynamic, status: Dynamic| add_by_email(
            &f,
            c,
            &campaign_id,
            &email,
            &status
        )
    );
    both!(
        engine,
        "set_member_status",
        "writes: set a member's Status (member by 00v id or by Lead/Contact id)",
        |f, c, campaign_id: Dynamic, member_id: Dynamic, status: Dynamic| set_member_status(
            &f,
            c,
            &campaign_id,
            &member_id,
            &status
        )
    );
    both!(
        engine,
        "remove_from_campaign",
        "writes: delete the CampaignMember",
        |f, c, campaign_id: Dynamic, member_id: Dynamic| remove_from_campaign(
            &f,
            c,
            &campaign_id,
            &member_id
        )
    );
    both!(
        engine,
        "create_record",
        "writes: create a record of any sObject type",
        |f, c, sobject: Dynamic, fields: Dynamic| create_record(&f, c, &sobject, &fields)
    );
    both!(
        engine,
        "update_record",
        "writes: update a record's fields",
        |f, c, sobject: Dynamic, id: Dynamic, fields: Dynamic| update_record(
            &f, c, &sobject, &id, &fields
        )
    );
    both!(
        engine,
        "upsert_record",
        "writes: create or update the record whose external id field holds value",
        |f, c, sobject: Dynamic, ext_field: Dynamic, value: Dynamic, fields: Dynamic| upsert_record(
            &f, c, &sobject, &ext_field, &value, &fields
        )
    );
    both!(
        engine,
        "delete_record",
        "writes: delete a record",
        |f, c, sobject: Dynamic, id: Dynamic| delete_record(&f, c, &sobject, &id)
    );

    both!(
        engine,
        "query",
        "reads: every record a SOQL query matches, all pages followed",
        |f, c, soql: ImmutableString| query(&f, c, &soql)
    );
    both!(
        engine,
        "query_one",
        "reads: the first record a SOQL query matches, or ()",
        |f, c, soql: ImmutableString| query_one(&f, c, &soql)
    );
    both!(
        engine,
        "get_record",
        "reads: one record with all its fields",
        |f, c, sobject: Dynamic, id: Dynamic| get_record(&f, c, &sobject, &id, None)
    );
    both!(
        engine,
        "get_record",
        "reads: one record with only these fields",
        |f, c, sobject: Dynamic, id: Dynamic, fields: Array| get_record(
            &f,
            c,
            &sobject,
            &id,
            Some(fields)
        )
    );
    both!(
        engine,
        "find_campaign",
        "reads: the id of the Campaign with this name, or (); cached",
        |f, c, name: ImmutableString| find_campaign(&f, c, &name)
    );
    both!(
        engine,
        "identity",
        "reads: the connected org and user",
        |f, c| identity(&f, c)
    );
    both!(
        engine,
        "limits",
        "reads: the org's /limits resource",
        |f, c| limits(&f, c)
    );

    api!(
        engine,
        "soql_quote",
        "helpers: a SOQL string literal, escaped by the SOQL rules",
        |_ctx, value: Dynamic| Ok::<_, Box<EvalAltResult>>(soql::quote(&if value.is_string() {
            value.into_string().unwrap_or_default()
        } else {
            value.to_string()
        }))
    );
    api!(
        engine,
        "render",
        "helpers: a Mustache template rendered as plain text (no HTML escaping)",
        |_ctx, template: ImmutableString, data: Dynamic| render(&template, &data, Escape::None)
    );
    api!(
        engine,
        "render_json",
        "helpers: a Mustache template with every value escaped for a JSON string",
        |_ctx, template: ImmutableString, data: Dynamic| render(&template, &data, Escape::Json)
    );
    api!(
        engine,
        "once",
        "helpers: true the first time key is seen",
        |ctx, key: ImmutableString| once(&ctx, &key, None)
    );
    api!(
        engine,
        "once",
        "helpers: true the first time key is seen within window (\"30m\", \"1d\", \"7d\")",
        |ctx, key: ImmutableString, window: ImmutableString| once(&ctx, &key, Some(&window))
    );
    api!(
        engine,
        "count",
        "helpers: how often count was called with key within window, this call included",
        |ctx, key: ImmutableString, window: ImmutableString| count(&ctx, &key, &window)
    );
    api!(
        engine,
        "log",
        "helpers: a log line tagged with the rule",
        |ctx, value: Dynamic| log_line(&ctx, &value)
    );
    api!(
        engine,
        "login",
        "connections: the configured connection",
        |ctx| login_with(&ctx, None)
    );
    api!(
        engine,
        "login",
        "connections: a new connection from settings like #{ auth_flow: \"client_credentials\", ... }",
        |ctx, settings: Map| login_with(&ctx, Some(settings))
    );
    api!(
        engine,
        "connect",
        "connections: a connection from an instance URL and an access token",
        |ctx, instance_url: ImmutableString, token: ImmutableString| connect(
            &ctx,
            &instance_url,
            &token
        )
    );
}

//! Message types. Field names follow the seed: `fn` for the function id,
//! `type` as the tag, `worker_id`, `job`, `ok`, `output`.

use serde::{Deserialize, Serialize};

use crate::blob::Blob;
use crate::error::ServiceError;
use crate::frame::{decode, encode, FrameError};
use crate::grant::Grants;
use crate::lang::Lang;

/// Identifies one request on a connection; replies echo it. Seed-style
/// messages without one read as 0.
pub type RequestId = u64;

/// The request id of a line that could not be read as the message it
/// should be, when the line is JSON with a numeric `req`: the error then
/// reaches whoever waits for that request. `None`: nobody can be answered.
pub fn req_of_line(line: &[u8]) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct ReqOnly {
        req: Option<RequestId>,
    }
    decode::<ReqOnly>(line).ok().and_then(|r| r.req)
}

/// A message that may expect a reply carrying the same request id.
pub trait Correlated {
    /// The id a reply to this message carries, `None` for one-way messages.
    fn req_id(&self) -> Option<RequestId>;
}

/// Gateway → Server: one operation and the id its reply will carry. On the
/// wire the operation's fields sit beside `req`, as in the seed:
/// `{"type":"deploy","req":1,"name":"hello","lang":"c","code":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRequest {
    #[serde(default)]
    pub req: RequestId,
    #[serde(flatten)]
    pub op: Operation,
}

/// What the gateway asks of the Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// Store, compile and register a new function (409 if the name is
    /// taken).
    Deploy(DeploySpec),
    /// Store and compile a new version of a deployed function; `fn=NAME`
    /// switches to it once it is complete.
    Update(DeploySpec),
    /// Remove a function (by name: every version) or one version (by id).
    Delete { name: String },
    /// A function's versions, newest first.
    Versions { name: String },
    /// A function's recent invocations, newest first.
    Invocations { name: String, limit: usize },
    /// The Prometheus exposition text.
    Metrics,
    /// The dashboard's live data.
    Dashboard,
    /// Run a function with `payload` as its stdin.
    Invoke {
        #[serde(rename = "fn")]
        function: String,
        #[serde(default)]
        payload: Blob,
        /// The id the gateway gave the request (logs, `X-Request-Id`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// Set for the raw route `/fn/NAME`: the HTTP request the function
        /// answers (it sees it as `FAAS_HTTP_*` variables).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<HttpRequest>,
        /// When the gateway sent it (Unix µs), to time that hop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_us: Option<u64>,
    },
    /// Queue a call of `fn` (`POST /async/NAME`): answered at once with
    /// the call's id; the fields are those of [`Operation::Invoke`].
    AsyncInvoke {
        #[serde(rename = "fn")]
        function: String,
        #[serde(default)]
        payload: Blob,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<HttpRequest>,
        /// `X-Callback-Url`: where the outcome is POSTed when the call
        /// ends (checked against the grants by the Server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_url: Option<String>,
    },
    /// An async call's status, attempts and result (`GET /invocation/ID`).
    GetCall { id: String },
    /// Dead async calls, of one function or all (`GET /dead-letters`).
    DeadLetters {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
    },
    /// Queue a dead call again (`POST /dead-letters/ID/redrive`).
    Redrive { id: String },
    /// Forget a dead call (`DELETE /dead-letters/ID`).
    ForgetDeadLetter { id: String },
    /// Every function's schedule, next tick and last ticks
    /// (`GET /schedules`).
    Schedules,
    /// The stored source of a function (by name or id).
    GetSource { name: String },
    /// The files of a function's project (by name or id).
    ListFiles { name: String },
    /// Create or replace a secret (`PUT /secret/NAME`).
    PutSecret { name: String, value: SecretValue },
    /// Every secret's name, size, times and users; never a value.
    ListSecrets,
    /// Remove a secret no function uses.
    DeleteSecret { name: String },
    /// Every deployed function's metadata.
    List,
    /// Load-balancer and worker counters.
    Stats,
    /// Whether this replica should receive traffic (`/health/ready`).
    Ready,
    /// A peer replica says the shared index changed (`POST /cluster/notice`):
    /// the body as received and its `X-Faas-Signature` header, checked by
    /// the Server, which holds the cluster key.
    ClusterNotice {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

impl Correlated for ServerRequest {
    fn req_id(&self) -> Option<RequestId> {
        Some(self.req)
    }
}

/// Server → gateway: the outcome of one [`ServerRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReply {
    pub req: RequestId,
    #[serde(flatten)]
    pub reply: Reply,
}

/// What an operation produced. The gateway decides the HTTP status from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Deployed {
        function: FunctionMeta,
    },
    /// The function ran (successfully or not) on `worker_id`.
    Invoked {
        worker_id: usize,
        result: JobResult,
        /// The raw route's Content-Type when the function fixes one (html,
        /// or `content_type` at deploy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    Source {
        lang: Lang,
        /// The source, module or archive, as deployed.
        code: Blob,
        /// What to serve it as (`text/plain` when unset).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    /// A project's files (a single-file function lists its one file).
    Files {
        files: Vec<ProjectFile>,
    },
    /// An async call was queued (or a dead one queued again).
    Queued {
        id: String,
    },
    /// An async call as `GET /invocation/ID` shows it.
    Call {
        call: serde_json::Value,
    },
    /// Dead async calls, in the same shape.
    DeadLetters {
        calls: Vec<serde_json::Value>,
    },
    /// A dead call was forgotten.
    Forgotten {
        id: String,
    },
    /// The functions' schedules (`GET /schedules`).
    Schedules {
        schedules: Vec<serde_json::Value>,
    },
    Functions {
        functions: Vec<FunctionMeta>,
    },
    Versions {
        versions: Vec<FunctionMeta>,
    },
    Deleted {
        removed: Vec<String>,
    },
    Invocations {
        invocations: Vec<InvocationRecord>,
    },
    Metrics {
        text: String,
    },
    Dashboard {
        data: serde_json::Value,
    },
    Stats {
        stats: PlatformStats,
    },
    /// `/health/ready`: `ready` false lists why (loading, draining...).
    Readiness {
        ready: bool,
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// A cluster notice was accepted.
    Noticed,
    /// A secret was stored; `created` false: it replaced a value.
    SecretStored {
        created: bool,
        secret: SecretInfo,
    },
    Secrets {
        secrets: Vec<SecretInfo>,
    },
    SecretDeleted {
        name: String,
    },
    Failed {
        error: ServiceError,
    },
}

impl Correlated for ServerReply {
    fn req_id(&self) -> Option<RequestId> {
        Some(self.req)
    }
}

/// A function to build: its source and per-function settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySpec {
    pub name: String,
    pub lang: Lang,
    /// The body: a source file, a prebuilt module (`lang=wasm`) or a
    /// project archive (`settings.archive` says which kind).
    pub code: Blob,
    #[serde(flatten)]
    pub settings: FunctionSettings,
}

/// What a deploy may set per function (on the wire and in
/// `metadata.json`, beside the other fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tmp_mb: Option<u64>,
    /// Content-Type of the raw route's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Authorization` and `Cookie` reach the function.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_auth: bool,
    /// Most workers the function's calls hold at once (below the LB's
    /// `--max-function-share`); more calls wait their turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// The deployer's variables (`env=KEY=VALUE`): configuration every
    /// call sees in its environment; shown in listings, not secrets.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// Names of the secrets the function reads (`secret=NAME`), as files
    /// `/run/secrets/NAME`; the values stay in the Server's secret store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The hosts the function may call through the platform's HTTP client
    /// (`allow=HOST[:PORT]`); none: no network at all.
    #[serde(default, skip_serializing_if = "Grants::is_empty")]
    pub allow: Grants,
    /// Async calls: attempts after the first failed one (0 to 10; 2 when
    /// unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Async calls: the wait before the first retry, doubled after each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff_ms: Option<u64>,
    /// Async calls older than this are not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    /// The function is a project: the body was an archive of this kind,
    /// unpacked into the function's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveFormat>,
    /// A project's entry file, relative to its root (`entry=`; the
    /// language's default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// A cron expression (5 fields, or 6 with seconds first, in UTC): each
    /// tick queues an async call. In a deploy request, an empty one
    /// removes the schedule on an update, and none keeps the previous
    /// version's; a stored version has none or a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The stdin of each scheduled call (text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_payload: Option<String>,
}

/// How a project archive is packed (chosen by the deploy's Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// `application/gzip`: a gzip-compressed tar.
    TarGz,
    /// `application/zip`.
    Zip,
}

impl ArchiveFormat {
    /// The Content-Type it is deployed and served with.
    pub fn content_type(self) -> &'static str {
        match self {
            ArchiveFormat::TarGz => "application/gzip",
            ArchiveFormat::Zip => "application/zip",
        }
    }

    /// The format a deploy's Content-Type names, if any (parameters
    /// ignored; the common aliases of each accepted).
    pub fn from_content_type(value: &str) -> Option<Self> {
        let media = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/gzip"
            | "application/x-gzip"
            | "application/x-tar+gzip"
            | "application/x-compressed-tar" => Some(ArchiveFormat::TarGz),
            "application/zip" | "application/x-zip-compressed" => Some(ArchiveFormat::Zip),
            _ => None,
        }
    }

    /// The file the archive is kept in, as deployed, in the function's
    /// directory.
    pub fn file_name(self) -> &'static str {
        match self {
            ArchiveFormat::TarGz => "code.tar.gz",
            ArchiveFormat::Zip => "code.zip",
        }
    }
}

/// One file of a project (`GET /function/NAME/files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFile {
    /// Relative to the project's root, `/`-separated.
    pub path: String,
    pub size: u64,
}

/// One past call of a function (`GET /function/NAME/invocations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub request_id: String,
    /// The version that ran.
    pub id: String,
    /// ok, exit, trap, timeout, worker_crashed, ...
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: f64,
    pub worker_id: usize,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The first KiB of its stderr.
    pub stderr: String,
    /// Outbound HTTP requests the call made (refused ones included).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outbound_requests: u32,
    /// Of those, how many the policy refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outbound_denied: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The HTTP request behind a raw-route call (`/fn/NAME/REST`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    /// The path after the function's name, starting with `/`, as received.
    pub path: String,
    /// The raw query string, as received.
    pub query: String,
    /// The request's headers (bounded by the gateway).
    pub headers: Vec<(String, String)>,
}

/// A deployed function, as `metadata.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMeta {
    pub id: String,
    pub name: String,
    pub lang: Lang,
    /// Unix seconds.
    pub created: u64,
    /// sha256 of the source, hex.
    pub sha256: String,
    /// Whether the function was compiled to WebAssembly (`code.wasm`).
    pub wasm: bool,
    #[serde(flatten)]
    pub settings: FunctionSettings,
    /// Commit order among the function's versions (`fn=NAME` serves the
    /// highest).
    #[serde(default)]
    pub version: u64,
}

/// The platform's counters (`GET /stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformStats {
    pub strategy: String,
    pub queue_len: usize,
    pub workers: Vec<WorkerStats>,
    pub worker_pids: Vec<u32>,
    pub worker_restarts: Vec<u64>,
    pub worker_recycles: Vec<u64>,
    pub functions: usize,
    /// The replica these figures are from (every figure here is this
    /// replica's alone; the function list is shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// Server → load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LbRequest {
    /// Claims a role on this connection. `"server"` (the right to report
    /// workers up and down) is granted only to the LB's own process.
    Hello {
        #[serde(default)]
        req: RequestId,
        role: String,
    },
    /// Pick a worker for a job; answered by [`LbReply::ForwardToWorker`]
    /// (possibly later, when FIFO queues it).
    Invoke {
        #[serde(default)]
        req: RequestId,
        #[serde(rename = "fn")]
        function: String,
        /// The Server leaves the payload out (it keeps it and adds it to the
        /// job itself); the LB echoes whatever it was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
        /// The request's id, for the LB's log lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// The function's name: the fair-share account the job counts
        /// against (all versions share it). Absent: `fn`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The function's own cap on workers held at once (its deploy's
        /// `max_concurrency`); the LB's `--max-function-share` applies too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_concurrency: Option<u32>,
    },
    /// A job forwarded earlier has ended (one-way).
    JobDone {
        req: RequestId,
        worker_id: usize,
        ok: bool,
    },
    /// Worker `worker_id` died: route around it (one-way).
    WorkerDown { worker_id: usize },
    /// Worker `worker_id` is (again) ready for jobs (one-way).
    WorkerUp { worker_id: usize },
    /// Ask for per-worker counters.
    Stats {
        #[serde(default)]
        req: RequestId,
    },
}

impl Correlated for LbRequest {
    fn req_id(&self) -> Option<RequestId> {
        match self {
            Self::Invoke { req, .. } | Self::Stats { req } | Self::Hello { req, .. } => Some(*req),
            Self::JobDone { .. } | Self::WorkerDown { .. } | Self::WorkerUp { .. } => None,
        }
    }
}

/// Load balancer → Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LbReply {
    /// The role asked for in [`LbRequest::Hello`] is granted.
    Welcome { req: RequestId, role: String },
    ForwardToWorker {
        req: RequestId,
        worker_id: usize,
        job: Job,
    },
    Stats {
        req: RequestId,
        strategy: String,
        queue_len: usize,
        workers: Vec<WorkerStats>,
    },
    /// A refusal. `req` is absent when the refused line had none (a
    /// one-way message, or one too broken to read it from): nobody waits
    /// for that answer.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<RequestId>,
        /// Why, for the Server to choose the client's status (absent in an
        /// older LB's lines: [`LbErrorKind::Invalid`]).
        #[serde(default)]
        kind: LbErrorKind,
        error: String,
    },
}

/// Why the load balancer refused a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbErrorKind {
    /// Every worker is busy and `--max-queue` calls already wait: the
    /// client should retry shortly.
    QueueFull,
    /// No worker is up to take the call (they are being restarted).
    NoWorker,
    /// The request itself was refused: a line that does not parse, a job
    /// this connection was not given, a role it may not take. From the
    /// Server, a fault of its own. A kind this build does not know reads
    /// as this one.
    #[default]
    #[serde(other)]
    Invalid,
}

impl Correlated for LbReply {
    fn req_id(&self) -> Option<RequestId> {
        match self {
            Self::ForwardToWorker { req, .. }
            | Self::Welcome { req, .. }
            | Self::Stats { req, .. } => Some(*req),
            Self::Error { req, .. } => *req,
        }
    }
}

/// One worker's counters as the LB sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub worker_id: usize,
    pub up: bool,
    pub weight: u32,
    pub in_flight: u64,
    pub completed: u64,
    pub failed: u64,
}

/// Server → worker: one line on the worker's stdin, either
/// `{"type":"run","req":1,"fn":"hello_1",...}` (a [`Job`], answered by one
/// [`JobResult`] line carrying its `req`) or
/// `{"type":"forget","ids":["hello_1"]}` (one-way: nothing answers it).
/// A line without `type` is read as a `run` job ([`WorkerRequest::decode`]):
/// what a seed-style or hand-typed line looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerRequest {
    /// Run a function.
    Run(Job),
    /// Drop these function ids from the worker's caches (they were
    /// deleted).
    Forget { ids: Vec<String> },
}

/// The sending side of [`WorkerRequest`], borrowing what it writes: a job's
/// payload (up to the body limit) is not copied to be sent.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WorkerRequestRef<'a> {
    Run(&'a Job),
    Forget { ids: &'a [String] },
}

/// Just the `type` of a line, to tell an untyped (legacy) line from a
/// broken typed one.
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: Option<serde::de::IgnoredAny>,
}

impl WorkerRequest {
    /// The line that asks a worker to run `job`.
    pub fn run_line(job: &Job) -> Vec<u8> {
        encode(&WorkerRequestRef::Run(job))
    }

    /// The line that tells a worker to forget `ids`.
    pub fn forget_line(ids: &[String]) -> Vec<u8> {
        encode(&WorkerRequestRef::Forget { ids })
    }

    /// Reads one line. A line with no `type` is a `run` job; the extra
    /// parses happen only for such lines and for broken ones.
    pub fn decode(line: &[u8]) -> Result<Self, FrameError> {
        match decode::<Self>(line) {
            Ok(request) => Ok(request),
            Err(err) => match decode::<TypeOnly>(line) {
                Ok(TypeOnly { kind: None }) => decode::<Job>(line).map(Self::Run),
                _ => Err(err),
            },
        }
    }
}

/// What a worker runs: the function, its input and its limits (inside a
/// [`WorkerRequest::Run`] line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    #[serde(default)]
    pub req: RequestId,
    /// Function id: the directory name under the functions dir.
    #[serde(rename = "fn")]
    pub function: String,
    /// The function's stdin; absent means empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Blob>,
    /// Extra environment variables of this call (`FAAS_HTTP_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// The request's id (the client's `X-Request-Id`): the function's
    /// `FAAS_REQUEST_ID` and the worker's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The function's language; absent means "read metadata.json".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Size cap of the call's private in-memory `/tmp`, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tmp_mb: Option<u64>,
    /// The secrets this call reads as `/run/secrets/NAME`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretFile>,
    /// The hosts this call may reach through the platform's HTTP client.
    #[serde(default, skip_serializing_if = "Grants::is_empty")]
    pub allow: Grants,
}

impl Job {
    /// A job for `function` with every limit left to the worker's defaults.
    pub fn new(req: RequestId, function: impl Into<String>) -> Self {
        Self {
            req,
            function: function.into(),
            payload: None,
            lang: None,
            timeout_ms: None,
            max_memory_mb: None,
            max_output_bytes: None,
            max_tmp_mb: None,
            env: Vec::new(),
            request_id: None,
            secrets: Vec::new(),
            allow: Grants::default(),
        }
    }
}

/// One secret as a call sees it: the file `/run/secrets/NAME` holding the
/// value. Its `Debug` never shows the value (a job may be logged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFile {
    pub name: String,
    pub value: SecretValue,
}

/// A secret's value: any bytes, which `Debug` never shows (messages and
/// jobs may be logged).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(pub Blob);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}

/// A stored secret as `GET /secrets` lists it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    /// The value's size in bytes.
    pub size: u64,
    /// Unix seconds.
    pub created: u64,
    pub updated: u64,
    /// Functions with a version that reads it.
    pub used_by: Vec<String>,
}

/// What a call did through the platform's HTTP client (absent: nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboundStats {
    /// Requests answered by the remote server (any status).
    #[serde(default)]
    pub ok: u32,
    /// Requests refused by the policy (host not granted, private address,
    /// the platform's own port, too many requests).
    #[serde(default)]
    pub denied: u32,
    /// Requests that failed (connection, TLS, response over the cap).
    #[serde(default)]
    pub error: u32,
    /// Requests stopped at the call's deadline.
    #[serde(default)]
    pub timeout: u32,
    /// How long each request that was sent took, in milliseconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durations_ms: Vec<f64>,
}

impl OutboundStats {
    /// Every request the function made, refused ones included.
    pub fn requests(&self) -> u32 {
        self.ok + self.denied + self.error + self.timeout
    }
}

/// Why a job did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The function ran and exited non-zero.
    Exit,
    /// The function trapped (unreachable, out of bounds, stack overflow...).
    Trap,
    /// The function ran past its deadline and was stopped.
    Timeout,
    /// No such function in the worker's functions dir.
    NotFound,
    /// The job itself was unusable (bad line, unknown language).
    BadJob,
    /// The worker failed for a reason of its own (I/O, an instance it could
    /// not build): a fault of the platform.
    Internal,
    /// The worker process died while holding the job.
    WorkerCrashed,
    /// The function's runtime (php, node, python3, an interpreter module)
    /// is missing or unusable on this worker; the error names what to
    /// install. Older workers called it `unavailable`.
    #[serde(alias = "unavailable")]
    RuntimeMissing,
    /// Native functions cannot be confined here (bubblewrap missing, or no
    /// user namespaces); the error names what to install or enable.
    SandboxUnavailable,
    /// The function's stored module cannot be loaded (not valid
    /// WebAssembly, no `_start`): it must be redeployed.
    ArtifactInvalid,
}

/// Worker → Server (one line on the worker's stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    #[serde(default)]
    pub req: RequestId,
    pub ok: bool,
    #[serde(default)]
    pub output: Blob,
    #[serde(default)]
    pub stderr: Blob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
    /// Output or stderr was cut at the output cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Modules this worker process has loaded since it started (Wasmer
    /// never frees code memory, so the Server recycles busy loaders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_loaded: Option<u64>,
    /// The call's outbound HTTP requests, when it made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundStats>,
}

impl JobResult {
    pub fn success(
        req: RequestId,
        output: Blob,
        stderr: Blob,
        exit_code: i32,
        duration_ms: f64,
    ) -> Self {
        Self {
            req,
            ok: true,
            output,
            stderr,
            exit_code: Some(exit_code),
            duration_ms,
            error: None,
            kind: None,
            truncated: false,
            modules_loaded: None,
            outbound: None,
        }
    }

    pub fn failure(req: RequestId, kind: FailureKind, error: impl Into<String>) -> Self {
        Self {
            req,
            ok: false,
            output: Blob::default(),
            stderr: Blob::default(),
            exit_code: None,
            duration_ms: 0.0,
            error: Some(error.into()),
            kind: Some(kind),
            truncated: false,
            modules_loaded: None,
            outbound: None,
        }
    }
}

//! The app builder: composes modules into one axum app with its worker and scheduler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, MemoryCache, RedisCache};
use crate::config::Config;
use crate::context::AppContext;
use crate::db::Db;
use crate::docs::ApiDocs;
use crate::error::{ServiceError, ServiceResult};
use crate::health::health_handler;
use crate::http::{apply_layers, method_not_allowed, not_found};
use crate::jobs::{CronSchedule, JobQueue, JobRegistry, JobStore};
use crate::module::Module;
use crate::pubsub::{MemoryPubSub, PubSub, RedisPubSub};

/// The modules of an app, in registration order (shared through the context).
#[derive(Clone, Default)]
pub struct Modules(Arc<Vec<Arc<dyn Module>>>);

impl Modules {
    /// Iterates in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Module>> {
        self.0.iter()
    }
}

/// Entry point: `SaasApp::builder(config).module(..).build().await`.
pub struct SaasApp;

impl SaasApp {
    /// Starts building an app from `config`.
    pub fn builder(config: Config) -> SaasAppBuilder {
        SaasAppBuilder {
            config,
            modules: Vec::new(),
            title: "SaaS API".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            providers: Vec::new(),
            routes: Vec::new(),
        }
    }
}

type Provider = Box<dyn FnOnce(&AppContext) + Send>;
type RouteHook = Box<dyn FnOnce(&AppContext) -> Router<AppContext> + Send>;

/// Collects modules and settings; [`build`](Self::build) connects, migrates and assembles.
pub struct SaasAppBuilder {
    config: Config,
    modules: Vec<Arc<dyn Module>>,
    title: String,
    version: String,
    providers: Vec<Provider>,
    routes: Vec<RouteHook>,
}

impl SaasAppBuilder {
    /// Adds a module; modules are migrated and initialised in this order.
    pub fn module(mut self, module: impl Module) -> Self {
        self.modules.push(Arc::new(module));
        self
    }

    /// The API title shown in the OpenAPI document.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The API version shown in the OpenAPI document.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Puts a value in the context before modules initialise (e.g. an `Arc<dyn Mailer>`).
    pub fn provide<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.providers.push(Box::new(move |ctx| ctx.insert(value)));
        self
    }

    /// Adds routes of the app's own, outside any module.
    pub fn routes(mut self, routes: impl FnOnce(&AppContext) -> Router<AppContext> + Send + 'static) -> Self {
        self.routes.push(Box::new(routes));
        self
    }

    /// The configuration being built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The modules added so far.
    pub fn module_list(&self) -> &[Arc<dyn Module>] {
        &self.modules
    }

    /// The OpenAPI document of the modules added so far (no database needed).
    pub fn docs(&self) -> ServiceResult<ApiDocs> {
        let fragments = self.modules.iter().map(|m| m.openapi());
        let links = self.modules.iter().filter_map(|m| m.api_root()).collect();
        ApiDocs::assemble(&self.title, &self.version, fragments, links)
    }

    /// Connects to the database (and Redis), applies every module's migrations, initialises
    /// the modules and assembles the router, OpenAPI document, jobs and cron entries.
    pub async fn build(self) -> ServiceResult<App> {
        let started = Instant::now();
        let docs = self.docs()?;
        let modules: Vec<&dyn Module> = self.modules.iter().map(|m| m.as_ref()).collect();
        let ctx = connect(self.config, &modules).await?;
        ctx.insert(CancellationToken::new());
        for provide in self.providers {
            provide(&ctx);
        }

        let mut registry = JobRegistry::default();
        let mut cron = CronSchedule::default();
        let mut router = Router::<AppContext>::new();
        ctx.insert(docs);
        let mut site = crate::admin::AdminSite::default();
        for module in &self.modules {
            module.admin(&mut site);
        }
        ctx.insert(Arc::new(site));
        for module in &self.modules {
            module.init(&ctx).await?;
            module.jobs(&mut registry);
            module.cron(&mut cron);
            router = router.merge(module.routes(&ctx));
        }
        cron.apply_overrides(ctx.config());
        cron.validate()?;
        for routes in self.routes {
            router = router.merge(routes(&ctx));
        }
        let modules = Modules(Arc::new(self.modules));
        ctx.insert(modules);

        let http_metrics = Arc::new(crate::metrics::HttpMetrics::default());
        ctx.insert(http_metrics.clone());
        let router = router
            .route("/health/", get(health_handler))
            .route("/metrics", get(crate::metrics::handler))
            .merge(crate::docs::routes())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(http_metrics, crate::metrics::track))
            .with_state(ctx.clone());
        let router = apply_layers(router, ctx.config());
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            database = ctx.db().backend_name(),
            "app built"
        );
        Ok(App { ctx, router, registry: Arc::new(registry), cron: Arc::new(cron) })
    }
}

/// A built app: its context, router, job handlers and cron entries.
pub struct App {
    ctx: AppContext,
    router: Router,
    registry: Arc<JobRegistry>,
    cron: Arc<CronSchedule>,
}

/// What `serve` runs beside the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Run the job worker in this process.
    pub worker: bool,
    /// Run the cron scheduler in this process.
    pub scheduler: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { worker: true, scheduler: true }
    }
}

impl App {
    /// The shared context (for calling services directly, in jobs or tests).
    pub fn context(&self) -> &AppContext {
        &self.ctx
    }

    /// The complete router with every layer.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The assembled OpenAPI document.
    pub fn docs(&self) -> ApiDocs {
        self.ctx.get::<ApiDocs>().unwrap_or_else(|| unreachable!("build() stores the docs"))
    }

    /// The registered job handlers.
    pub fn jobs(&self) -> &Arc<JobRegistry> {
        &self.registry
    }

    /// The registered cron entries.
    pub fn cron(&self) -> &Arc<CronSchedule> {
        &self.cron
    }

    /// The token cancelled when the app shuts down; long-lived tasks (sockets) watch it.
    pub fn shutdown_token(&self) -> CancellationToken {
        shutdown_token(&self.ctx)
    }

    /// Serves HTTP on `listener` (and the worker/scheduler per `options`) until `shutdown`
    /// resolves; in-flight requests finish and the worker completes its current jobs.
    pub async fn serve(
        self,
        listener: TcpListener,
        options: ServeOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> ServiceResult<()> {
        let token = self.shutdown_token();
        let worker = options.worker.then(|| crate::jobs::spawn_worker(&self.ctx, &self.registry, token.clone()));
        let scheduler = options.scheduler.then(|| crate::jobs::spawn_scheduler(&self.ctx, &self.cron, token.clone()));
        let addr = listener.local_addr().map_err(ServiceError::internal)?;
        tracing::info!(%addr, "listening");
        let signal_token = token.clone();
        // Small frames (API answers, WebSocket messages) go out at once, not after a delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "TCP_NODELAY not set");
            }
        });
        let server = axum::serve(listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight requests");
                signal_token.cancel();
            });
        let result = server.await.map_err(ServiceError::internal);
        token.cancel();
        for task in [worker, scheduler].into_iter().flatten() {
            let _ = task.await;
        }
        self.ctx.db().close().await;
        result
    }

    /// Runs only the job worker until `shutdown` resolves.
    pub async fn run_worker(self, shutdown: impl Future<Output = ()> + Send + 'static) -> ServiceResult<()> {
        self.run_background(shutdown, |app, token| crate::jobs::spawn_worker(&app.ctx, &app.registry, token)).await
    }

    /// Runs only the cron scheduler until `shutdown` resolves.
    pub async fn run_scheduler(self, shutdown: impl Future<Output = ()> + Send + 'static) -> ServiceResult<()> {
        self.run_background(shutdown, |app, token| crate::jobs::spawn_scheduler(&app.ctx, &app.cron, token)).await
    }

    async fn run_background(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        spawn: impl FnOnce(&App, CancellationToken) -> tokio::task::JoinHandle<()>,
    ) -> ServiceResult<()> {
        let token = self.shutdown_token();
        let task = spawn(&self, token.clone());
        shutdown.await;
        token.cancel();
        let _ = task.await;
        self.ctx.db().close().await;
        Ok(())
    }
}

/// Connects to the database (and Redis), applies the migrations of `modules` in order and
/// opens the job store: the context without the app builder (for plain axum apps).
pub async fn connect(config: Config, modules: &[&dyn Module]) -> ServiceResult<AppContext> {
    let db = Db::connect_with(&config.database_url, config.database_max_connections).await?;
    for module in modules {
        db.migrate(module.name(), module.migrations()).await?;
    }
    let (cache, pubsub): (Arc<dyn Cache>, Arc<dyn PubSub>) = match &config.redis_url {
        Some(url) => (
            Arc::new(RedisCache::connect(url, &config.redis_prefix).await?),
            Arc::new(RedisPubSub::connect(url, &config.redis_prefix).await?),
        ),
        None => (Arc::new(MemoryCache::new()), Arc::new(MemoryPubSub::new())),
    };
    let store = JobStore::connect(&config, &db).await?;
    Ok(AppContext::new(config, db, cache, pubsub, JobQueue::new(store)))
}

/// The app's shutdown token, from the context.
pub fn shutdown_token(ctx: &AppContext) -> CancellationToken {
    ctx.get_or_insert_with(|_| CancellationToken::new())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

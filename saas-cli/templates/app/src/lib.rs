//! {{project-name}}: the SDK's modules and the app's own, composed by [`compose`]. The server
//! (`main.rs`) and the tests build the same app from it.

use saas_core::{Migrations, Module, SaasAppBuilder};

pub mod owner;

/// The app's own modules, one folder each; `saas generate module NAME` adds one.
pub mod modules {
    pub mod projects;
    // saas:module-files
}
{% if payments %}
/// The app's own payment strategies, one file each; `saas generate strategy NAME` adds one.
pub mod strategies {
    // saas:strategy-files
}
{% endif %}
/// Adds every module of the app to `builder`: the SDK's, then the app's own tables and modules.
pub fn compose(builder: SaasAppBuilder) -> SaasAppBuilder {
{% if payments %}    let payments = saas_payments::PaymentsModule::default();
    // saas:strategies
{% endif %}    let builder = builder
{% if auth %}        .module(saas_auth::AuthModule::default())
{% endif %}{% if payments %}        .module(payments)
{% endif %}{% if chat %}        .module(saas_chat::ChatModule::default())
{% endif %}{% if notify %}        .module(saas_notify::NotifyModule::default())
{% endif %}{% if auth %}        .module(saas_admin::AdminModule)
{% endif %}        .module(AppTables);
    let builder = builder.module(modules::projects::ProjectsModule);
    // saas:modules
    builder
}

/// The app's own tables: `migrations/sqlite` and `migrations/postgres`, applied as module
/// `app` before the app's modules start.
pub struct AppTables;

impl Module for AppTables {
    fn name(&self) -> &'static str {
        "app"
    }

    fn migrations(&self) -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }
}

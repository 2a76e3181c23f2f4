pub mod http;
pub mod moto;
pub mod poller;
pub mod resources;
pub mod template;

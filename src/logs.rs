//! Output capture of services.

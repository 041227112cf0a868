//! The app's HTTP tests, in one test binary (one build, one link): a file per module.
//! `saas generate` adds the tests of what it generates here.

mod health;
mod projects;
mod support;
// saas:tests

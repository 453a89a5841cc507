//! Process handling: spawning services with pre-exec hygiene, reaping, signalling groups.

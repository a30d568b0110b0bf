//! The timer pump: while this worker leads, fires due timeouts into the feed. It decides
//! nothing; the fired events come back through the one subscription loop.

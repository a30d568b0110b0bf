//! Driving one instance through a batch: load, record each input with its decision, send the
//! pending commands, record their outcomes, until the instance is quiescent.

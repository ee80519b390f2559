//! Deadlines: a command's time limit holds whatever the server does, and the
//! message says the time really waited.

//! The local terminal, for `scx-vmctl ssh` without a command.

/// (columns, rows) of stdout's terminal.
pub fn size() -> Option<(u32, u32)> {
    // SAFETY: winsize is four plain integers, for which all-zero bytes are a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some((ws.ws_col as u32, ws.ws_row as u32))
}

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Raw mode on stdin while alive; the old settings come back on drop.
pub struct RawMode(Option<libc::termios>);

impl RawMode {
    pub fn enable() -> RawMode {
        if !is_tty(libc::STDIN_FILENO) {
            return RawMode(None);
        }
        // SAFETY: termios is plain integers and arrays of them: all-zero bytes are a valid value.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr/tcsetattr on stdin with a valid termios.
        unsafe {
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return RawMode(None);
            }
            let old = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
            RawMode(Some(old))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: restoring the settings read in enable().
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &old) };
        }
    }
}

//! Turns PDVs into DIMSE message parts (PS3.7 §6.3.1, PS3.8 annex E).
//!
//! A command may arrive in any number of PDVs (it is reassembled, bounded by a limit);
//! data set fragments are passed through as they arrive, zero-copy, so a data set of any
//! size streams with bounded memory. Command and data PDVs may share a PDU.

use crate::assoc::PdvData;
use bytes::{Bytes, BytesMut};

/// A message part, ready for the service layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimseEvent {
    /// A complete command set (decode with [`super::Command::decode`]).
    Command {
        /// Presentation context ID.
        pc_id: u8,
        /// The encoded command set.
        bytes: Bytes,
    },
    /// A data set fragment of the current message.
    Data {
        /// Presentation context ID.
        pc_id: u8,
        /// The fragment, a slice of the received PDU.
        data: Bytes,
        /// True on the last fragment.
        last: bool,
    },
}

/// Errors in PDV sequencing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// A command above the limit.
    #[error("command set larger than {0} bytes")]
    CommandTooLarge(usize),
    /// Fragments of one command on different presentation contexts.
    #[error("command fragment on presentation context {got}, expected {expected}")]
    ContextMismatch {
        /// Context of the first fragment.
        expected: u8,
        /// Context of this fragment.
        got: u8,
    },
}

/// Reassembles commands from PDVs; see the module documentation.
#[derive(Debug)]
pub struct Assembler {
    cmd: BytesMut,
    cmd_pc: Option<u8>,
    max_command: usize,
    /// After a command over the limit: its remaining fragments are dropped up to and
    /// including the last one, so they are never taken for the start of a new command.
    discarding: bool,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl Assembler {
    /// An assembler accepting commands up to `max_command` bytes.
    pub fn new(max_command: usize) -> Self {
        Self {
            cmd: BytesMut::new(),
            cmd_pc: None,
            max_command,
            discarding: false,
        }
    }

    /// Feeds one PDV; returns the message part it completes or carries, if any.
    pub fn push(&mut self, pdv: PdvData) -> Result<Option<DimseEvent>, AssemblyError> {
        if !pdv.is_command {
            return Ok(Some(DimseEvent::Data {
                pc_id: pdv.pc_id,
                data: pdv.data,
                last: pdv.is_last,
            }));
        }
        if let Some(pc) = self.cmd_pc
            && pc != pdv.pc_id
        {
            self.cmd.clear();
            self.cmd_pc = None;
            return Err(AssemblyError::ContextMismatch {
                expected: pc,
                got: pdv.pc_id,
            });
        }
        if self.discarding {
            // Tail of an oversized command (reported once, when the limit was crossed).
            self.discarding = !pdv.is_last;
            return Ok(None);
        }
        if self.cmd.len() + pdv.data.len() > self.max_command {
            self.cmd.clear();
            self.cmd_pc = None;
            self.discarding = !pdv.is_last;
            return Err(AssemblyError::CommandTooLarge(self.max_command));
        }
        if pdv.is_last {
            let bytes = if self.cmd.is_empty() {
                pdv.data // single fragment: no copy
            } else {
                self.cmd.extend_from_slice(&pdv.data);
                self.cmd.split().freeze()
            };
            self.cmd_pc = None;
            return Ok(Some(DimseEvent::Command {
                pc_id: pdv.pc_id,
                bytes,
            }));
        }
        self.cmd_pc = Some(pdv.pc_id);
        self.cmd.extend_from_slice(&pdv.data);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(data: &'static [u8], last: bool) -> PdvData {
        PdvData {
            pc_id: 1,
            is_command: true,
            is_last: last,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn fragments_after_an_oversized_command_are_not_a_new_command() {
        let mut a = Assembler::new(4);
        assert_eq!(a.push(cmd(b"abc", false)), Ok(None));
        assert_eq!(
            a.push(cmd(b"def", false)),
            Err(AssemblyError::CommandTooLarge(4))
        );
        // The rest of that command, including its last fragment, is dropped.
        assert_eq!(a.push(cmd(b"g", false)), Ok(None));
        assert_eq!(a.push(cmd(b"h", true)), Ok(None));
        // The next command is assembled normally.
        assert_eq!(a.push(cmd(b"ij", false)), Ok(None));
        assert_eq!(
            a.push(cmd(b"kl", true)),
            Ok(Some(DimseEvent::Command {
                pc_id: 1,
                bytes: Bytes::from_static(b"ijkl")
            }))
        );
    }

    #[test]
    fn an_oversized_last_fragment_ends_the_command() {
        let mut a = Assembler::new(2);
        assert_eq!(
            a.push(cmd(b"abc", true)),
            Err(AssemblyError::CommandTooLarge(2))
        );
        assert_eq!(
            a.push(cmd(b"xy", true)),
            Ok(Some(DimseEvent::Command {
                pc_id: 1,
                bytes: Bytes::from_static(b"xy")
            }))
        );
    }
}

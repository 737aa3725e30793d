//! The shape shared by the two messages whose body is just a ring id (merge detect and
//! token-hold cancel): one macro generates the view and Repr for each, so they cannot drift.

/// Generates a view `$view<T>` and a `$repr { ring_id }` for a body of one ring id.
macro_rules! ring_id_message {
    ($(#[$doc:meta])* $view:ident, $(#[$rdoc:meta])* $repr:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $view<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps a buffer without checking it.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps a buffer after [`check_len`](Self::check_len).
            ///
            /// # Errors
            /// [`DecodeError::Truncated`](crate::DecodeError::Truncated).
            pub fn new_checked(buffer: T) -> crate::error::Result<Self> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Checks that no accessor will panic.
            ///
            /// # Errors
            /// [`DecodeError::Truncated`](crate::DecodeError::Truncated).
            pub fn check_len(&self) -> crate::error::Result<()> {
                crate::field::need(self.buffer.as_ref(), BODY_LEN)
            }

            /// Full validation: exact length and a valid representative.
            ///
            /// # Errors
            /// The first problem found.
            pub fn check(&self) -> crate::error::Result<()> {
                self.check_len()?;
                let len = self.buffer.as_ref().len();
                if len > BODY_LEN {
                    return Err(crate::DecodeError::TrailingBytes(len - BODY_LEN));
                }
                crate::field::check_node("ring_id.rep", self.ring_id().rep.0)
            }

            /// The wrapped buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The ring this message is about.
            pub fn ring_id(&self) -> crate::RingId {
                crate::field::get_ring_id(self.buffer.as_ref(), 0)
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Sets the ring id.
            pub fn set_ring_id(&mut self, v: crate::RingId) {
                crate::field::set_ring_id(self.buffer.as_mut(), 0, v);
            }
        }

        $(#[$rdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub struct $repr {
            /// The ring this message is about.
            pub ring_id: crate::RingId,
        }

        impl $repr {
            /// Parses a fully validated body.
            ///
            /// # Errors
            /// As the view's `check`.
            pub fn parse<T: AsRef<[u8]> + ?Sized>(v: &$view<&T>) -> crate::error::Result<Self> {
                v.check()?;
                Ok(Self { ring_id: v.ring_id() })
            }

            /// Bytes the body takes.
            pub const fn buffer_len(&self) -> usize {
                BODY_LEN
            }

            /// Writes the body.
            ///
            /// # Panics
            /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut $view<T>) {
                v.set_ring_id(self.ring_id);
            }
        }
    };
}
pub(crate) use ring_id_message;

//! The protobuf codec every generated Pharos service and client uses: prost encoding with a
//! smaller starting buffer than tonic's 8 KiB. A Watch stream keeps its buffers for as long as it
//! is open, so with ten thousand watchers on a replica the default buffers alone would be 80 MiB
//! and scatter each fan-out over memory the CPU cache cannot hold; larger messages grow the
//! buffer as they need.

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Starting size of each call's encode and decode buffers.
const BUFFER_BYTES: usize = 1024;
/// A streaming call hands its buffer to the transport once this much is encoded (tonic's default).
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// prost encoding with [`BUFFER_BYTES`] starting buffers.
#[derive(Debug, Clone)]
pub struct PharosCodec<T, U> {
    _types: std::marker::PhantomData<(T, U)>,
}

impl<T, U> Default for PharosCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: std::marker::PhantomData,
        }
    }
}

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

impl<T, U> Codec for PharosCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffer_settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(buffer_settings())
    }
}

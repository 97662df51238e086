//! Write coalescing for server connections: an I/O wrapper that yields to the scheduler once
//! before the first write of each flush, so that frames which many streams of one HTTP/2
//! connection produce in the same instant (one change fanned out to hundreds of Watch streams)
//! leave in one `writev` instead of one each. grpc-go's loopy writer does the same with
//! `runtime.Gosched()`; without it, tokio runs the connection task right after each stream task
//! (LIFO slot) and h2 flushes one frame per syscall.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Wraps a connection; reads pass through, writes are delayed by one scheduler turn.
#[derive(Debug)]
pub struct CoalescingIo<T> {
    inner: T,
    /// Set once this flush cycle has yielded; cleared when a flush completes.
    yielded: bool,
}

impl<T> CoalescingIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            yielded: false,
        }
    }

    /// Returns Pending (after asking to be polled again) the first time in a flush cycle.
    fn yield_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Waking ourselves puts the connection task at the back of the run queue, behind the
        // stream tasks that are about to queue more frames.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.yield_once(cx));
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.yield_once(cx));
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx));
        self.yielded = false;
        Poll::Ready(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for CoalescingIo<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::CoalescingIo;

    #[tokio::test]
    async fn passes_bytes_through_both_ways() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = CoalescingIo::new(server);
        let mut client = client;
        server.write_all(b"frames").await.expect("write");
        server.flush().await.expect("flush");
        server
            .write_all(b" again")
            .await
            .expect("second write after a flush");
        server.flush().await.expect("flush");
        let mut received = [0u8; 12];
        client.read_exact(&mut received).await.expect("read");
        assert_eq!(&received, b"frames again");
        client.write_all(b"ok").await.expect("reply");
        let mut reply = [0u8; 2];
        server.read_exact(&mut reply).await.expect("read reply");
        assert_eq!(&reply, b"ok");
    }
}

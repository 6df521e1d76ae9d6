//! A gRPC server's accepted connections, at most so many at once (identity-svc and
//! collector-svc): a connection past the cap is closed as soon as it is accepted, so clients that
//! open connections and hold them cannot use up the process's memory or file descriptors (tonic
//! has no such cap of its own).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// An accepted connection holding one of the cap's permits until it closes.
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

/// The connections `listener` accepts (`TCP_NODELAY` on), at most `max` open at once.
pub fn capped(listener: TcpListener, max: usize) -> impl Stream<Item = io::Result<CappedStream>> {
    let open = Arc::new(Semaphore::new(max));
    // `Server::tcp_nodelay` only applies to listeners tonic binds itself: without this, Nagle's
    // algorithm held small replies and revocation events back ~40 ms.
    TcpIncoming::from(listener).with_nodelay(Some(true)).filter_map(move |accepted| {
        let open = open.clone();
        async move {
            match accepted {
                Ok(stream) => match open.try_acquire_owned() {
                    Ok(permit) => Some(Ok(CappedStream { stream, _permit: permit })),
                    Err(_) => {
                        tracing::warn!(peer = ?stream.peer_addr().ok(), max, "too many gRPC connections; closing a new one");
                        None
                    }
                },
                Err(error) => Some(Err(error)),
            }
        }
    })
}

impl Connected for CappedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

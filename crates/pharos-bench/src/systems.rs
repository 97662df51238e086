//! The two systems the config benchmark drives through the same code: a Pharos config replica
//! and an etcd server, each behind the small [`KvSystem`] interface.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use pharos_proto::config::v1 as pb;
use pharos_proto::config::v1::config_service_client::ConfigServiceClient;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tonic::transport::Channel;

mod etcd {
    #![allow(clippy::all, dead_code)]
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod authpb {
        tonic::include_proto!("authpb");
    }
}

use etcd::etcdserverpb::{
    PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, kv_client::KvClient,
    watch_client::WatchClient, watch_request::RequestUnion,
};

/// One change seen by a watcher: when it arrived and the value it carried.
pub type Receipt = (Instant, String);

/// What the benchmark needs from a key-value store with change streams.
pub trait KvSystem: Clone + Send + Sync + 'static {
    /// A client on its own connection.
    fn connect(addr: SocketAddr) -> impl Future<Output = anyhow::Result<Self>> + Send;
    fn put(&self, key: String, value: String) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn get(&self, key: String) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Opens a watch on one key and returns once the server has confirmed it (snapshot sent or
    /// watch created); every later change is then forwarded to `receipts` with its arrival time
    /// until the returned handle is aborted.
    fn watch(
        &self,
        key: String,
        receipts: mpsc::UnboundedSender<Receipt>,
    ) -> impl Future<Output = anyhow::Result<AbortHandle>> + Send;
}

#[derive(Clone)]
pub struct Pharos {
    client: ConfigServiceClient<Channel>,
}

impl Pharos {
    pub async fn cache_stats(&self) -> anyhow::Result<pb::CacheStatsResponse> {
        Ok(self
            .client
            .clone()
            .cache_stats(pb::CacheStatsRequest {})
            .await?
            .into_inner())
    }
}

impl KvSystem for Pharos {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let client = ConfigServiceClient::new(crate::process::channel(addr).await?);
        Ok(Self { client })
    }

    async fn put(&self, key: String, value: String) -> anyhow::Result<()> {
        let request = pb::SetRequest {
            key,
            value,
            r#type: pb::ValueType::String as i32,
            ..Default::default()
        };
        self.client.clone().set(request).await?;
        Ok(())
    }

    async fn get(&self, key: String) -> anyhow::Result<()> {
        self.client
            .clone()
            .get(pb::GetRequest {
                key,
                environment: String::new(),
            })
            .await?;
        Ok(())
    }

    async fn watch(
        &self,
        key: String,
        receipts: mpsc::UnboundedSender<Receipt>,
    ) -> anyhow::Result<AbortHandle> {
        let request = pb::WatchRequest {
            keys: vec![key],
            ..Default::default()
        };
        let mut stream = self.client.clone().watch(request).await?.into_inner();
        loop {
            let response = stream
                .message()
                .await?
                .context("watch closed before its snapshot")?;
            if response.snapshot_complete {
                break;
            }
        }
        let task = tokio::spawn(async move {
            while let Ok(Some(response)) = stream.message().await {
                let arrived = Instant::now();
                for event in response.events {
                    let value = event.entry.map(|entry| entry.value).unwrap_or_default();
                    if receipts.send((arrived, value)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(task.abort_handle())
    }
}

#[derive(Clone)]
pub struct Etcd {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
}

impl KvSystem for Etcd {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let channel = crate::process::channel(addr).await?;
        Ok(Self {
            kv: KvClient::new(channel.clone()),
            watch: WatchClient::new(channel),
        })
    }

    async fn put(&self, key: String, value: String) -> anyhow::Result<()> {
        let request = PutRequest {
            key: key.into_bytes(),
            value: value.into_bytes(),
            ..Default::default()
        };
        self.kv.clone().put(request).await?;
        Ok(())
    }

    async fn get(&self, key: String) -> anyhow::Result<()> {
        // Serializable: answered by the member without a consensus round, like a cached read.
        let request = RangeRequest {
            key: key.into_bytes(),
            serializable: true,
            ..Default::default()
        };
        self.kv.clone().range(request).await?;
        Ok(())
    }

    async fn watch(
        &self,
        key: String,
        receipts: mpsc::UnboundedSender<Receipt>,
    ) -> anyhow::Result<AbortHandle> {
        let (requests, outgoing) = mpsc::unbounded_channel();
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: key.into_bytes(),
                ..Default::default()
            })),
        };
        requests.send(create)?;
        let outgoing = tokio_stream::wrappers::UnboundedReceiverStream::new(outgoing);
        let mut stream = self.watch.clone().watch(outgoing).await?.into_inner();
        let first = stream.next().await.context("etcd closed the watch")??;
        if !first.created {
            bail!("etcd did not confirm the watch");
        }
        let task = tokio::spawn(async move {
            // Keeping the request side open keeps the watch alive.
            let _requests = requests;
            while let Some(Ok(response)) = stream.next().await {
                let arrived = Instant::now();
                for event in response.events {
                    let value = event
                        .kv
                        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                        .unwrap_or_default();
                    if receipts.send((arrived, value)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(task.abort_handle())
    }
}

//! `worker run --dir HOST[:GUEST[:ro]]`: host directories for debugging,
//! mounted as other runtimes do. Each directory is its own file system
//! rooted at HOST, mounted at GUEST inside an in-memory root, and the root
//! is pre-opened as `/` (mapping the host's `/` and then sub-directories
//! into it makes every create land on the virtual root and fail).
//!
//! [`HostDir`] adds what wasmer's host file system lacks (creating
//! symlinks); [`ReadOnly`] refuses every change with a permission error
//! (it also makes the interpreters' in-memory `/faas` read-only, where
//! [`crate::rofs`] turns that error into `EROFS`). Deployed functions never
//! get a host directory.

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use wasmer_wasix::virtual_fs::{
    self, FileOpener, FileSystem, FsError, Metadata, OpenOptions, OpenOptionsConfig, ReadDir,
    VirtualFile,
};

/// One `--dir` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMapping {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

impl DirMapping {
    /// `HOST`, `HOST:GUEST` or `HOST:GUEST:ro`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let host = parts.next().unwrap_or_default();
        let guest = parts.next().unwrap_or(host);
        let read_only = match parts.next() {
            None => false,
            Some("ro") => true,
            Some(other) => return Err(format!("unknown mode '{other}' in '{spec}' (only ro)")),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("expected HOST[:GUEST[:ro]], got '{spec}'"));
        }
        Ok(Self {
            host: host.into(),
            guest: guest.to_string(),
            read_only,
        })
    }
}

/// The root file system of a `worker run` with `mappings`.
pub fn root(
    handle: tokio::runtime::Handle,
    mappings: &[DirMapping],
) -> Result<virtual_fs::MountFileSystem, FsError> {
    let root = virtual_fs::MountFileSystem::new();
    root.mount("/", Arc::new(virtual_fs::TmpFileSystem::new()))?;
    for m in mappings {
        let host = Arc::new(HostDir::new(handle.clone(), &m.host)?);
        let fs: Arc<dyn FileSystem + Send + Sync> = if m.read_only {
            Arc::new(ReadOnly(host))
        } else {
            host
        };
        let guest = if m.guest.starts_with('/') {
            m.guest.clone()
        } else {
            format!("/{}", m.guest)
        };
        root.mount(guest, fs)?;
    }
    Ok(root)
}

/// A host directory as a file system, with symlinks.
#[derive(Debug)]
pub struct HostDir {
    inner: virtual_fs::host_fs::FileSystem,
    root: PathBuf,
}

impl HostDir {
    pub fn new(handle: tokio::runtime::Handle, root: &Path) -> Result<Self, FsError> {
        let root = root.canonicalize().map_err(FsError::from)?;
        Ok(Self {
            inner: virtual_fs::host_fs::FileSystem::new(handle, &root)?,
            root,
        })
    }

    /// The host path of a guest path inside this directory (never outside).
    fn host_path(&self, path: &Path) -> Result<PathBuf, FsError> {
        let mut out = self.root.clone();
        for part in path.components() {
            match part {
                Component::Normal(p) => out.push(p),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return Err(FsError::InvalidInput),
            }
        }
        Ok(out)
    }
}

impl FileSystem for HostDir {
    fn readlink(&self, path: &Path) -> virtual_fs::Result<PathBuf> {
        // The link's text as written (the guest resolves it itself).
        std::fs::read_link(self.host_path(path)?).map_err(Into::into)
    }
    fn read_dir(&self, path: &Path) -> virtual_fs::Result<ReadDir> {
        self.inner.read_dir(path)
    }
    fn create_dir(&self, path: &Path) -> virtual_fs::Result<()> {
        self.inner.create_dir(path)
    }
    fn create_symlink(&self, source: &Path, target: &Path) -> virtual_fs::Result<()> {
        std::os::unix::fs::symlink(source, self.host_path(target)?).map_err(Into::into)
    }
    fn remove_dir(&self, path: &Path) -> virtual_fs::Result<()> {
        self.inner.remove_dir(path)
    }
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, virtual_fs::Result<()>> {
        self.inner.rename(from, to)
    }
    fn metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.inner.metadata(path)
    }
    fn symlink_metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.inner.symlink_metadata(path)
    }
    fn remove_file(&self, path: &Path) -> virtual_fs::Result<()> {
        self.inner.remove_file(path)
    }
    fn new_open_options(&self) -> OpenOptions<'_> {
        self.inner.new_open_options()
    }
}

/// A file system that refuses every change.
#[derive(Debug)]
pub struct ReadOnly(pub Arc<dyn FileSystem + Send + Sync>);

impl FileSystem for ReadOnly {
    fn readlink(&self, path: &Path) -> virtual_fs::Result<PathBuf> {
        self.0.readlink(path)
    }
    fn read_dir(&self, path: &Path) -> virtual_fs::Result<ReadDir> {
        self.0.read_dir(path)
    }
    fn create_dir(&self, _: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn create_symlink(&self, _: &Path, _: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn remove_dir(&self, _: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn rename<'a>(&'a self, _: &'a Path, _: &'a Path) -> BoxFuture<'a, virtual_fs::Result<()>> {
        Box::pin(async { Err(FsError::PermissionDenied) })
    }
    fn metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.0.metadata(path)
    }
    fn symlink_metadata(&self, path: &Path) -> virtual_fs::Result<Metadata> {
        self.0.symlink_metadata(path)
    }
    fn remove_file(&self, _: &Path) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn new_open_options(&self) -> OpenOptions<'_> {
        OpenOptions::new(self)
    }
}

impl FileOpener for ReadOnly {
    fn open(
        &self,
        path: &Path,
        conf: &OpenOptionsConfig,
    ) -> virtual_fs::Result<Box<dyn VirtualFile + Send + Sync + 'static>> {
        if conf.write || conf.append || conf.truncate || conf.create || conf.create_new {
            return Err(FsError::PermissionDenied);
        }
        let file = self.0.new_open_options().options(conf.clone()).open(path)?;
        Ok(Box::new(ReadOnlyFile(file)))
    }
}

/// An open file of a [`ReadOnly`] file system: reads pass, and so do the
/// calls that only look; writing, truncating, unlinking and touching fail.
#[derive(Debug)]
struct ReadOnlyFile(Box<dyn VirtualFile + Send + Sync + 'static>);

fn read_only() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only directory")
}

impl VirtualFile for ReadOnlyFile {
    fn last_accessed(&self) -> u64 {
        self.0.last_accessed()
    }
    fn last_modified(&self) -> u64 {
        self.0.last_modified()
    }
    fn created_time(&self) -> u64 {
        self.0.created_time()
    }
    fn set_times(&mut self, _: Option<u64>, _: Option<u64>) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn set_len(&mut self, _: u64) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn unlink(&mut self) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }
    fn poll_read_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.0.as_mut()).poll_read_ready(cx)
    }
    fn poll_write_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(read_only()))
    }
}

impl AsyncRead for ReadOnlyFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self.0.as_mut()).poll_read(cx, buf)
    }
}

impl AsyncSeek for ReadOnlyFile {
    fn start_seek(mut self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        Pin::new(self.0.as_mut()).start_seek(position)
    }
    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Pin::new(self.0.as_mut()).poll_complete(cx)
    }
}

impl AsyncWrite for ReadOnlyFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(read_only()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse() {
        let m = DirMapping::parse("/a:/b:ro").unwrap();
        assert_eq!(
            (m.host.to_str(), m.guest.as_str(), m.read_only),
            (Some("/a"), "/b", true)
        );
        let m = DirMapping::parse("/a").unwrap();
        assert_eq!((m.guest.as_str(), m.read_only), ("/a", false));
        assert!(DirMapping::parse("/a:/b:rw").is_err());
        assert!(DirMapping::parse(":/b").is_err());
    }
}

import Foundation

/// Where resumable uploads not yet complete are recorded (see `PartialUpload`).
///
/// Blocking: call from a thread that may block. The listener records an offset only after
/// the bytes up to it are fsynced, and reports only recorded offsets.
public protocol PartialUploadStore: Sendable {
    /// Records a new upload.
    func createPartialUpload(_ upload: PartialUpload) throws(WharfError)
    func partialUpload(id: String) throws(WharfError) -> PartialUpload?
    /// Records that `offset` bytes are durable, and the length once it is known.
    func recordPartialUpload(id: String, offset: Int64, length: Int64?, at time: Date) throws(WharfError)
    /// Forgets an upload: completed, cancelled, expired or broken.
    func removePartialUpload(id: String) throws(WharfError)
    /// Every upload not yet complete, oldest first.
    func partialUploads() throws(WharfError) -> [PartialUpload]
}

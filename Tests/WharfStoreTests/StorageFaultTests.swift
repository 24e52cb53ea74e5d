import Foundation
import Testing
import WharfCore
@testable import WharfStore

/// Faults of the registry's storage, named for what they are.
@Suite struct StorageFaultTests {
    /// A full disk under the registry is `insufficient_storage` (which the listener answers
    /// with 507), not a generic database error (500).
    @Test func aFullDiskUnderTheRegistryIsInsufficientStorage() throws {
        let directory = try scratchRegistryPath("full").replacingOccurrences(of: "/\(Registry.fileName)", with: "")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=1m", "tmpfs", directory]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mounting a tmpfs needs root")
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [directory]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        let registry = try Registry.create(at: "\(directory)/\(Registry.fileName)")
        let detail = String(repeating: "x", count: 4_000)
        var failure: WharfError?
        for _ in 0..<1_000 {
            do {
                try registry.record(AuditEvent(
                    outcome: .refused, status: 403, partner: nil, subject: nil, fingerprint: nil, remoteAddress: "127.0.0.1:1", detail: detail
                ))
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "the disk never filled")
        #expect(error.code == .insufficientStorage, "\(error)")
        #expect(error.description.contains("disk is full"))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WharfCore

/// The lock one gateway holds on its home while it runs: two gateways on one SQLite home
/// would recover, claim and prune under each other. It is an `flock` on `wharf.lock`, which
/// the kernel releases when the process ends however it ends; the file holds the PID of the
/// holder, for the refusal's message.
final class HomeLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock on `home`, or throws `busy` naming the process that holds it. With
    /// `node` (a home shared by several nodes), the lock is that node's: one process per
    /// node name.
    init(home: WharfHome, node: NodeName? = nil) throws(WharfError) {
        let path = node.map { home.lockPath(node: $0) } ?? home.lockPath
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw WharfError(.fileSystem, "cannot open \(path): \(String(cString: strerror(errno)))", fix: "check the home's permissions")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.readPID(descriptor)
            close(descriptor)
            let by = holder.map { "process \($0)" } ?? "another process"
            if let node {
                throw WharfError(
                    .busy, "node \(node) of the Wharf home \(home.path) is in use by \(by)",
                    fix: "give each `wharf serve` of a shared home its own --node-name, or stop the other first"
                )
            }
            throw WharfError(
                .busy, "the Wharf home \(home.path) is in use by \(by)",
                fix: "run one `wharf serve` (or `wharf deliver --once`) per home; stop the other first, or use another --home"
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.descriptor = descriptor
    }

    /// Whether a gateway holds `home`'s lock now.
    static func isHeld(_ home: WharfHome) -> Bool {
        let descriptor = open(home.lockPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return true }
        flock(descriptor, LOCK_UN)
        return false
    }

    deinit {
        close(descriptor)
    }

    private static func readPID(_ descriptor: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: bytes[0..<count].prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self))
    }
}

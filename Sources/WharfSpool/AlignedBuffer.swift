#if canImport(Glibc)
import Glibc
#endif
import WharfCore

/// Bytes gathered in page-aligned memory, for writing to a `StagedFile` opened with
/// `direct: true` (`O_DIRECT` asks for aligned memory, offsets and lengths).
///
/// The memory is mapped, not allocated: it goes back to the system when the buffer is
/// released instead of staying in the malloc arena of whichever thread released it.
/// One task owns a buffer at a time (it may hand it to a thread pool and back), which is
/// what makes the unchecked `Sendable` sound.
public final class AlignedBuffer: @unchecked Sendable {
    /// What `O_DIRECT` asks of every device Linux knows.
    public static let alignment = 4096

    private let memory: UnsafeMutableRawBufferPointer
    /// Bytes gathered so far.
    public private(set) var count = 0

    /// - Parameter capacity: a multiple of `alignment`.
    public init(capacity: Int) throws(WharfError) {
        precondition(capacity > 0 && capacity % Self.alignment == 0, "capacity must be a multiple of \(Self.alignment)")
        let mapped = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw WharfError(.systemResources, "cannot map \(capacity) bytes for a write buffer: \(String(cString: strerror(errno)))")
        }
        memory = UnsafeMutableRawBufferPointer(start: mapped, count: capacity)
    }

    deinit {
        munmap(memory.baseAddress, memory.count)
    }

    public var capacity: Int { memory.count }
    public var isFull: Bool { count == memory.count }

    /// Copies as much of `bytes` as fits; returns how many bytes that was.
    public func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let taken = min(bytes.count, memory.count - count)
        if taken > 0 {
            (memory.baseAddress! + count).copyMemory(from: bytes.baseAddress!, byteCount: taken)
            count += taken
        }
        return taken
    }

    /// The bytes gathered.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(memory)[..<count])
    }

    public func removeAll() {
        count = 0
    }

    /// Whether `bytes` can be written with `O_DIRECT` as they are.
    static func isAligned(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return Int(bitPattern: base) % alignment == 0 && bytes.count % alignment == 0
    }
}

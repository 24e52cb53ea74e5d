import NIOCore
import NIOEmbedded
import Testing
@testable import WharfListener

@Suite struct DetachPlaintextHandlerTests {
    /// What `NIOSSLHandler` does with its read buffer: passes it on, then empties it and
    /// decrypts the next read into it while the last one is still held downstream.
    @Test func theReadBufferIsReusedInPlaceWhileWhatItHeldIsStillWaiting() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(DetachPlaintextHandler())
        var readBuffer = channel.allocator.buffer(capacity: 64 * 1024)
        readBuffer.writeRepeatingByte(UInt8(ascii: "a"), count: 40_000)
        let storage = readBuffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        try channel.writeInbound(readBuffer)

        readBuffer.moveReaderIndex(to: 0)
        readBuffer.moveWriterIndex(to: 0)
        readBuffer.writeRepeatingByte(UInt8(ascii: "b"), count: 40_000)
        // Had the first read been passed on as it was, this write would have copied the
        // whole storage to a new place first.
        #expect(readBuffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == storage)

        let handedOn = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(handedOn == ByteBuffer(repeating: UInt8(ascii: "a"), count: 40_000))
        #expect(try channel.finish().isClean)
    }
}

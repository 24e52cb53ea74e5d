import NIOCore

/// Hands the decrypted bytes on in a buffer of their own, so that `NIOSSLHandler` can
/// reuse its read buffer.
///
/// `NIOSSLHandler` decrypts every read into one buffer, passes it on, and writes the next
/// read into the same storage. Whatever still holds the last read's bytes (the HTTP
/// decoder's slices, waiting in the upload's stream until the upload takes them) makes
/// that write copy the whole storage first, stale bytes included: for a large upload
/// that was several times the body in copies, a third of the event loop's time. A copy
/// of only the bytes read, here, leaves `NIOSSLHandler` the sole owner of its storage.
final class DetachPlaintextHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let plaintext = unwrapInboundIn(data)
        var detached = context.channel.allocator.buffer(capacity: plaintext.readableBytes)
        detached.writeImmutableBuffer(plaintext)
        context.fireChannelRead(wrapInboundOut(detached))
    }
}

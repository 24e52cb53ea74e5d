import NIOCore
import NIOSSL
import NIOTLS

/// Refuses a revoked client certificate once the handshake is done, before any request is
/// read: on every handshake, resumed ones included (which skip `ClientCertificateCheck`).
/// A refusal is noted for the audit trail, surfaces as the connection's error, and
/// nothing the client sent after it reaches the HTTP layer.
final class RevocationCheckHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let revoked: RevokedCertificates
    private let anchors: TrustAnchors
    private let note: RevocationNote
    private var refused = false

    init(revoked: RevokedCertificates, anchors: TrustAnchors, note: RevocationNote) {
        self.revoked = revoked
        self.anchors = anchors
        self.note = note
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let leaf = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        guard let leaf, let refusal = revoked.refusal(of: leaf, anchors: anchors) else {
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        refused = true
        note.refusal.withLockedValue { $0 = refusal }
        context.fireErrorCaught(refusal)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }
}

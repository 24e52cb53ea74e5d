import NIOCore
import NIOSSL
import WharfCore
import WharfPKI
import X509

/// The TLS layer the listener wraps around `HTTPChannel`: NIOSSL with the TLS context
/// current when the connection arrives (`TLSContextProvider`), the plaintext detach, the
/// quick ACK after the handshake, and the client certificate read back from the session.
struct TLSChannel: Sendable {
    let contexts: TLSContextProvider

    /// A connection: its HTTP channel, and how to learn its client certificate.
    struct Secured: Sendable {
        let connection: HTTPChannel.Connection
        let identity: ClientIdentity
        /// Read at accept: a channel that closed (a handshake refused) no longer has one.
        let remoteAddress: SocketAddress?
        /// Set if the handshake refused a revoked certificate, or one its CA's CRL does not vouch for.
        let revocation: RevocationNote
        /// Signs receipts with the server key this connection's handshake used.
        let signer: ReceiptSigner?
    }

    /// Sets up `channel`: TLS, then HTTP; `onCutOff` hears of the timeouts closing it.
    func configure(
        _ channel: any Channel, configuration: ListenerConfiguration,
        onCutOff: @escaping @Sendable (ConnectionTimeoutHandler.CutOff) -> Void = { _ in }
    ) -> EventLoopFuture<Secured> {
        let remoteAddress = channel.remoteAddress
        let note = RevocationNote()
        return channel.eventLoop.makeFutureWithTask {
            try await contexts.current()
        }.flatMapThrowing { current in
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(NIOSSLServerHandler(context: current.context, customVerificationCallback: current.check.verify))
            try pipeline.addHandler(RevocationCheckHandler(revoked: current.revoked, anchors: current.anchors, note: note))
            try pipeline.addHandler(DetachPlaintextHandler())
            try pipeline.addHandler(QuickAckHandler())
            let connection = try HTTPChannel.configure(channel, configuration: configuration, secured: true, onCutOff: onCutOff)
            return Secured(connection: connection, identity: Self.identity(of: channel, anchors: current.anchors), remoteAddress: remoteAddress, revocation: note, signer: current.signer)
        }
    }

    /// The client certificate of `channel`'s TLS session, as the inbox sees it. Read from
    /// the session for each connection, not only in the handshake: resumed sessions skip
    /// verification callbacks.
    static func identity(of channel: any Channel, anchors: TrustAnchors) -> ClientIdentity {
        ClientIdentity {
            guard let peer = try await channel.nioSSL_peerCertificate().get() else { return nil }
            let der = try peer.toDERBytes()
            return try anchors.presented.value(for: der) {
                let leaf = try Certificate(derEncoded: der)
                return PresentedCertificate(
                    fingerprint: leaf.fingerprint, subject: leaf.subjectName,
                    subjectText: leaf.subject.description, issuer: anchors.issuer(of: leaf),
                    serial: Hex.encode(leaf.serialNumber.bytes)
                )
            }
        }
    }
}

/// How a connection learns the client certificate it was opened with: from the TLS session
/// for the listener (`TLSChannel.identity`), or a fixed one in tests of the HTTP layer alone.
struct ClientIdentity: Sendable {
    let presented: @Sendable () async throws -> PresentedCertificate?

    init(_ presented: @escaping @Sendable () async throws -> PresentedCertificate?) {
        self.presented = presented
    }
}

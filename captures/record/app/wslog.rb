# frozen_string_literal: true

# Endpoint-side ground truth for Ruby endpoints built on websocket-driver (ActionCable's
# ClientSocket, faye-websocket): the same JSON-lines events as ../wslog.js and ../wslog.py.
# Every frame the driver writes is logged from Hybi#send_frame (unmasked payload, header bits
# as written: pongs and the close echo that the driver sends by itself included), every frame it
# reads from Hybi#emit_frame (control frames) and Hybi#emit_message (whole data messages).
#
# usage: require_relative 'wslog'; WsLog.setup(role, log_path, impl)
#        WsLog.app(conn, what: ..., ...)       # application facts

require 'json'
require 'digest'
require 'websocket/driver'

module WsLog
  OPNAMES = { 0 => 'cont', 1 => 'text', 2 => 'binary', 8 => 'close', 9 => 'ping', 10 => 'pong' }.freeze

  class << self
    attr_accessor :role, :impl

    def setup(role, path, impl)
      @role = role
      @impl = impl
      @out = File.open(path, 'a')
      @out.sync = true
      @lock = Mutex.new
      ::WebSocket::Driver::Hybi.prepend(HybiHook)
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    end

    def emit(ev, conn, fields = {})
      rec = { ev: ev, t: now, role: @role, impl: @impl, conn: conn }.merge(fields)
      @lock.synchronize { @out.write(JSON.generate(rec) + "\n") }
    end

    def app(conn, fields)
      emit('app', conn, fields)
    end

    def conn_key(addr, port)
      addr = addr.to_s.sub(/\A::ffff:/, '')
      addr.include?(':') ? "[#{addr}]:#{port}" : "#{addr}:#{port}"
    end

    # The client's end of a hijacked rack request (Puma keeps the socket as rack.hijack's io).
    def conn_of_env(env)
      io = env['rack.hijack'].respond_to?(:io) ? env['rack.hijack'].io : env['rack.hijack_io']
      peer = io.peeraddr(false)
      conn_key(peer[3], peer[1])
    rescue StandardError
      nil
    end

    def addresses(env)
      io = env['rack.hijack'].respond_to?(:io) ? env['rack.hijack'].io : env['rack.hijack_io']
      l = io.local_address
      r = io.remote_address
      [[l.ip_address.sub(/\A::ffff:/, ''), l.ip_port], [r.ip_address.sub(/\A::ffff:/, ''), r.ip_port]]
    rescue StandardError
      [nil, nil]
    end

    def describe(opcode, data)
      data = data.b
      d = { opcode: opcode, length: data.bytesize, sha256: Digest::SHA256.hexdigest(data) }
      if opcode == 'text'
        d[:text] = data.dup.force_encoding('UTF-8').scrub.chars.first(64).join
      end
      d[:payload_hex] = data.unpack1('H*') if %w[ping pong close].include?(opcode)
      d
    end

    def parse_close(data)
      data = data.b
      return { code: nil, reason: nil } if data.empty?

      { code: data.unpack1('n'), reason: data.byteslice(2..).to_s.force_encoding('UTF-8').scrub }
    end
  end

  # Prepended to WebSocket::Driver::Hybi: logs what the driver writes and reads, for the
  # connection whose rack env the driver's socket holds.
  module HybiHook
    def wslog_conn
      @wslog_conn ||= (WsLog.conn_of_env(@socket.env) if @socket.respond_to?(:env))
    end

    def wslog_state
      @wslog_state ||= { seq: 0, sent_close: nil, received_close: nil }
    end

    def send_frame(frame)
      op = OPNAMES[frame.opcode] || frame.opcode.to_s
      st = wslog_state
      st[:sent_close] = WsLog.parse_close(frame.payload) if op == 'close'
      WsLog.emit('msg_sent', wslog_conn,
                 { frame_seq: [st[:seq]], compressed: frame.rsv1 ? true : false }.merge(WsLog.describe(op, frame.payload)))
      st[:seq] += 1
      super
    end

    def emit_frame(buffer)
      frame = @frame
      op = OPNAMES[frame.opcode]
      if %w[close ping pong].include?(op)
        payload = ::WebSocket::Mask.mask(buffer, frame.masking_key)
        wslog_state[:received_close] = WsLog.parse_close(payload) if op == 'close'
        WsLog.emit('msg_recv', wslog_conn, WsLog.describe(op, payload))
      end
      super
    end

    # Every end comes here: the peer's Close, the driver's own close, a protocol failure.
    def shutdown(code, reason, error = false)
      st = wslog_state
      WsLog.emit('closed', wslog_conn, sent: st[:sent_close], received: st[:received_close],
                                       reported: { code: code, reason: reason.to_s })
      super
    end

    def emit_message
      message = @message
      if message
        data = message.data
        WsLog.emit('msg_recv', wslog_conn, WsLog.describe(OPNAMES[message.opcode], data))
      end
      super
    end
  end
end

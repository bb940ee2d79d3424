# frozen_string_literal: true

# A Rails ActionCable server (Debian's ruby-actioncable, standalone: no Rails application, the
# async subscription adapter) on Puma, for app_scenarios.py.
#
# usage: ruby cable_server.rb MODE --port P --log FILE [--conns N]
#   MODE session: the connection class accepts ?user=NAME and rejects connections without one
#   (disconnect "unauthorized"); EchoChannel answers each `speak` with {"echo": text} and on
#   `restart` the server restarts (every connection gets disconnect "server_restart");
#   RejectChannel rejects every subscription. Exits after N connections ended (default 2).
#
# Truth: frames from websocket-driver (wslog.rb), application facts (`ev: "app"`) from the
# connection and channel callbacks.

require 'logger'
require 'stringio'
require_relative 'wslog'

mode = ARGV[0]
opts = ARGV[1..].each_slice(2).to_h { |k, v| [k.sub(/\A--/, ''), v] }
port = Integer(opts.fetch('port'))
expected = Integer(opts.fetch('conns', '2'))

require 'action_cable'
require 'puma'
require 'rack/handler/puma'

WsLog.setup('server', opts.fetch('log'),
            "actioncable #{ActionCable.version} on puma #{Puma::Const::PUMA_VERSION}")

# Frames: ActionCable's ClientSocket wraps websocket-driver; log its open with the addresses.
module ClientSocketOpenLog
  def initialize(env, *rest)
    super
    conn = WsLog.conn_of_env(env)
    local, remote = WsLog.addresses(env)
    @driver.on(:open) do
      WsLog.emit('open', conn, local: local, remote: remote, path: env['REQUEST_URI'], status: 101,
                               subprotocol: @driver.protocol, extensions: nil)
    end
  end
end
ActionCable::Connection::ClientSocket.prepend(ClientSocketOpenLog)

$ended = 0
$ended_lock = Mutex.new
def connection_ended
  done = $ended_lock.synchronize { ($ended += 1) >= $expected }
  Thread.new { sleep 0.5; exit!(0) } if done
end
$expected = expected

module ApplicationCable
  class Connection < ActionCable::Connection::Base
    identified_by :user

    def conn
      @wslog_conn ||= WsLog.conn_of_env(env)
    end

    def connect
      name = request.params['user']
      if name.nil? || name.empty?
        WsLog.app(conn, what: 'connect_rejected', reason: 'unauthorized', reconnect: false)
        reject_unauthorized_connection
      end
      self.user = name
      WsLog.app(conn, what: 'connected', user: name)
    end

    def disconnect
      WsLog.app(conn, what: 'disconnected', user: user)
    end

    # Every connection ends here, accepted or not.
    def on_close(*args)
      super
    ensure
      connection_ended
    end
  end
end

class EchoChannel < ActionCable::Channel::Base
  def conn
    connection.conn
  end

  def subscribed
    WsLog.app(conn, what: 'subscribed', channel: 'EchoChannel', room: params['room'])
  end

  def speak(data)
    WsLog.app(conn, what: 'action_received', channel: 'EchoChannel', action: 'speak', text: data['text'])
    transmit({ 'echo' => data['text'] })
    WsLog.app(conn, what: 'transmitted', channel: 'EchoChannel', message: { 'echo' => data['text'] })
  end

  def restart(_data)
    WsLog.app(conn, what: 'action_received', channel: 'EchoChannel', action: 'restart')
    # Not from a worker of the pool that the restart halts.
    Thread.new do
      sleep 0.05
      WsLog.app(conn, what: 'server_restart', reason: 'server_restart', reconnect: true)
      ActionCable.server.restart
    end
  end

  def unsubscribed
    WsLog.app(conn, what: 'unsubscribed', channel: 'EchoChannel')
  end
end

class RejectChannel < ActionCable::Channel::Base
  def subscribed
    WsLog.app(connection.conn, what: 'subscription_rejected', channel: 'RejectChannel')
    reject
  end
end

raise "unknown mode #{mode}" unless mode == 'session'

ActionCable.server.config.cable = { 'adapter' => 'async' }
ActionCable.server.config.logger = Logger.new($stderr, level: Logger::INFO)
ActionCable.server.config.connection_class = -> { ApplicationCable::Connection }
ActionCable.server.config.disable_request_forgery_protection = true
ActionCable.server.config.worker_pool_size = 2

app = Rack::Builder.new do
  map('/cable') { run ActionCable.server }
end

Thread.new { sleep 30; exit!(1) }
Rack::Handler::Puma.run(app, Host: '127.0.0.1', Port: port, Threads: '1:4', Silent: true) do |launcher|
  launcher.events.on_booted do
    $stdout.puts 'READY'
    $stdout.flush
  end
end

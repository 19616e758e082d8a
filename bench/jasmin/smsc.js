// A local SMSC for the Jasmin comparison (bench/jasmin), built on the npm `smpp` package.
//
// It binds any ESME, answers every submit_sm with a fresh message id and, when the submit asked
// for a receipt (registered_delivery), sends a deliver_sm delivery receipt for it at once, in the
// usual "id:... stat:DELIVRD" text form. It also answers enquire_link and unbind. It counts what
// it saw and prints one line of JSON on SIGTERM.
//
//   NODE_PATH=/opt/jasmin-smsc/node_modules node bench/jasmin/smsc.js --port 2776

"use strict";

const smpp = require("smpp");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const port = Number(option("--port", "2776"));
let nextId = 1;
const counts = { binds: 0, submits: 0, receipts: 0, receipt_answers: 0 };

function smppDate(now) {
  // YYMMDDhhmm, the date form of a receipt's "submit date" and "done date".
  const two = (n) => String(n).padStart(2, "0");
  return (
    two(now.getUTCFullYear() % 100) + two(now.getUTCMonth() + 1) + two(now.getUTCDate()) +
    two(now.getUTCHours()) + two(now.getUTCMinutes())
  );
}

function receiptFor(submit, messageId) {
  const date = smppDate(new Date());
  const text = Buffer.isBuffer(submit.short_message.message)
    ? ""
    : String(submit.short_message.message || "").slice(0, 20);
  return {
    // The receipt travels back from the handset: its source is the submit's destination.
    source_addr_ton: submit.dest_addr_ton,
    source_addr_npi: submit.dest_addr_npi,
    source_addr: submit.destination_addr,
    dest_addr_ton: submit.source_addr_ton,
    dest_addr_npi: submit.source_addr_npi,
    destination_addr: submit.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    short_message:
      `id:${messageId} sub:001 dlvrd:001 submit date:${date} done date:${date} ` +
      `stat:DELIVRD err:000 text:${text}`,
    receipted_message_id: messageId,
    message_state: smpp.MESSAGE_STATE.DELIVERED,
  };
}

const server = smpp.createServer((session) => {
  const bind = (pdu) => {
    counts.binds += 1;
    session.send(pdu.response());
  };
  session.on("bind_transceiver", bind);
  session.on("bind_transmitter", bind);
  session.on("bind_receiver", bind);
  session.on("enquire_link", (pdu) => session.send(pdu.response()));
  session.on("unbind", (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on("submit_sm", (pdu) => {
    counts.submits += 1;
    const messageId = (nextId++).toString(16).padStart(8, "0");
    session.send(pdu.response({ message_id: messageId }));
    if (pdu.registered_delivery & 0x03) {
      counts.receipts += 1;
      session.deliver_sm(receiptFor(pdu, messageId), () => {
        counts.receipt_answers += 1;
      });
    }
  });
  session.on("error", () => {}); // a peer that goes away mid-PDU is not our failure
});

server.listen(port, "127.0.0.1", () => console.log("ready"));

process.on("SIGTERM", () => {
  console.log(JSON.stringify(counts));
  process.exit(0);
});

const { is } = require('bpmnlint-utils');

/**
 * An exclusive or inclusive gateway that splits needs a default flow, else a token
 * whose conditions all fail stops there (server rule `gateway-default`).
 */
module.exports = function() {

  function check(node, reporter) {
    if (!is(node, 'bpmn:ExclusiveGateway') && !is(node, 'bpmn:InclusiveGateway')) {
      return;
    }
    const outgoing = node.outgoing || [];
    if (outgoing.length > 1 && !node.default) {
      reporter.report(node.id, 'the gateway splits without a default flow');
    }
  }

  return { check };
};

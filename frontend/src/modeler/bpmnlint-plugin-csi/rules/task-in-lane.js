const { is } = require('bpmnlint-utils');

/**
 * A user task must lie in a lane: the lane names the role whose inbox gets it
 * (server rule `task-in-lane`). Only processes that have lanes at all are checked
 * against their lanes; a process without lanes fails for every user task.
 */
module.exports = function() {

  function laneRefs(process) {
    const refs = new Set();
    const visit = (laneSet) => {
      ((laneSet && laneSet.lanes) || []).forEach((lane) => {
        (lane.flowNodeRef || []).forEach((node) => refs.add(node.id));
        visit(lane.childLaneSet);
      });
    };
    (process.laneSets || []).forEach(visit);
    return refs;
  }

  function userTasks(container, found) {
    (container.flowElements || []).forEach((element) => {
      if (is(element, 'bpmn:UserTask')) {
        found.push(element);
      }
      if (is(element, 'bpmn:SubProcess')) {
        userTasks(element, found);
      }
    });
    return found;
  }

  function check(node, reporter) {
    if (!is(node, 'bpmn:Process')) {
      return;
    }
    const refs = laneRefs(node);
    userTasks(node, []).forEach((task) => {
      if (!refs.has(task.id)) {
        reporter.report(task.id, 'a user task must lie in a role\'s lane');
      }
    });
  }

  return { check };
};

module.exports = {
  configs: {
    recommended: {
      rules: {
        'task-in-lane': 'error',
        'gateway-default': 'error'
      }
    }
  }
};

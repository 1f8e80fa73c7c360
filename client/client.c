/* placeholder: being written */
#include "mq/mq.h"

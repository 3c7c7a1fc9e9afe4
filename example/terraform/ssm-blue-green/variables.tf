variable "region" {
  description = "The AWS region of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the service: the load balancer and launch template are called this, the colours NAME-blue and NAME-green, and the SSM parameter /NAME/ami."
  type        = string
  default     = "web"
}

variable "ami_id" {
  description = "The AMI the SSM parameter is created with. Only the first apply uses it: from then on phoenix moves the parameter (see lifecycle.ignore_changes on aws_ssm_parameter.ami), so changing it here changes nothing."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the stack."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets (in at least two availability zones) for the load balancer and the instances."
  type        = list(string)
}

variable "instance_type" {
  description = "Instance type of the web servers."
  type        = string
  default     = "t3.micro"
}

variable "app_port" {
  description = "Port the app listens on; the load balancer forwards to it and health-checks /health on it."
  type        = number
  default     = 8080
}

variable "min_size" {
  description = "Minimum number of instances of blue, the live colour. With return_home every deploy ends on blue with this minimum."
  type        = number
  default     = 2
}

variable "max_size" {
  description = "Maximum number of instances of either colour."
  type        = number
  default     = 6
}

variable "desired_capacity" {
  description = "Number of instances of blue, the live colour; green has none between deploys."
  type        = number
  default     = 3
}
